//! The outputs: Markdown archive files and the feeds (Atom, JSON Feed), all written atomically.

pub mod archive;
pub mod atom;
pub mod feeds;
pub mod hooks;
pub mod json_feed;
pub mod render;
pub mod site;
pub mod yaml;
