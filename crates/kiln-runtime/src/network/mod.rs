//! Container networking.
