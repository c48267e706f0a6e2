//! The use cases, shared by the API and the pages.

pub mod jobs;
