//! Operator tools: tunnel inventory and filters, doctor, codex/claude setup.
