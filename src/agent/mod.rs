//! Device side of the tunnel plane: control channel, tunnel registration, proxy legs, reconnect, `forward`.
