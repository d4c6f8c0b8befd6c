//! Contexts: which engine to reach, with which token and CA (`~/.rstream/config.yaml`, rstream's format).
