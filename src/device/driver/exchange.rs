//! One exchange on a line, as the bus statistics count it.

use std::time::Duration;

/// How one exchange ended, for the bus statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Timeout,
    CrcError,
    Exception,
    TransportError,
}

/// One exchange on the line: how it ended and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    pub outcome: Outcome,
    pub took: Duration,
}
