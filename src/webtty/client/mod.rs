//! The WebTTY client (operator side): run one command and capture its output ([`exec()`]), or attach the local
//! terminal to a remote PTY ([`terminal`]).
//!
//! ```no_run
//! # futures_lite::future::block_on(async {
//! use rstream::webtty::client::{exec, ExecRequest};
//! let result = exec("ws://127.0.0.1:8080", ExecRequest::command(["uname", "-a"])).await?;
//! println!("{} → {}", result.url, result.exit_code);
//! # Ok::<(), rstream::webtty::WebttyError>(()) });
//! ```

mod connect;
mod exec;
mod protocol;
mod resolve;
pub mod target;
pub mod terminal;

pub use connect::{connect, dial_direct, BoxConn, ClientWs, Conn, ConnectOptions, DirectTls};
pub use exec::{
    command_exit_code, exec, exec_capturing, exec_on, CancelSignal, ExecFailure, ExecOutput, ExecRequest, ExecResult,
    OutputWriter, COMMAND_NOT_FOUND_EXIT_CODE, NOT_EXECUTABLE_EXIT_CODE,
};
pub use resolve::resolve;
pub use target::Target;
