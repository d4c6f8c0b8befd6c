//! WebDAV filesystem sidecar at `/fs`: the device handler and the operator client.
