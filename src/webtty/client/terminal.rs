//! Interactive terminal client (placeholder until the next step).
