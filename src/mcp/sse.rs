//! Server-sent events as a Streamable-HTTP MCP server sends them in answer to a POST: `data:` lines joined by
//! `\n` make one event, a blank line ends it; `event:`, `id:`, `retry:` and comment lines (`:`) are read and
//! ignored. Only what the MCP client needs: the data of each complete event, fed in arbitrary chunks.
//!
//! Bounded: the caller caps the total bytes it feeds (the response cap), and a pending line or event never
//! holds more than what was fed.

/// An incremental SSE event splitter.
#[derive(Debug, Default)]
pub struct SseEvents {
    line: Vec<u8>,
    data: Option<String>,
}

impl SseEvents {
    /// A splitter with nothing pending.
    pub fn new() -> SseEvents {
        SseEvents::default()
    }

    /// Feeds `bytes` and returns the data of every event they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.take_line(&line) {
                done.push(event);
            }
        }
        done
    }

    /// The data of the event still open when the stream ended (a server may omit the final blank line).
    pub fn finish(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            let _ = self.take_line(&line);
        }
        self.data.take()
    }

    fn take_line(&mut self, line: &[u8]) -> Option<String> {
        if line.is_empty() {
            return self.data.take();
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = line.split_once(':').unwrap_or((&line, ""));
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_blank_lines_across_chunks() {
        let mut sse = SseEvents::new();
        assert!(sse.feed(b"event: message\r\nid: 1\r\ndata: {\"a\":").is_empty());
        assert_eq!(sse.feed(b"1}\r\n\r\n: ping\n\ndata: x\ndata: y\n\n"), ["{\"a\":1}", "x\ny"]);
        assert_eq!(sse.feed(b"data:z"), Vec::<String>::new());
        assert_eq!(sse.finish().as_deref(), Some("z"));
        assert_eq!(sse.finish(), None);
    }
}
