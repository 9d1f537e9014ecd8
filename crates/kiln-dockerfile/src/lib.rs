//! The Dockerfile frontend of kiln.
//!
//! This crate owns everything between the text of a Dockerfile and the typed
//! stages the build planner consumes: the parser (text → syntax tree with
//! spans, directives and heredocs), the shell-word lexer that expands
//! variables the way BuildKit does, the lowering of the tree into typed
//! instructions with ARG/ENV scoping, `.dockerignore` patterns and the build
//! checks.
//!
//! It is pure: every entry point takes `&str` and returns values or typed
//! errors. It must not touch the file system, the network, the terminal or
//! the process environment; the `kiln` binary does that and hands text in.

pub mod ast;
pub mod diagnostic;
pub mod ignore;
pub mod instructions;
pub mod lint;
pub mod lower;
pub mod mounts;
pub mod parser;
pub mod paths;
pub mod shell;
pub mod span;

pub use ast::Dockerfile;
pub use parser::{parse, ParseError};
pub use span::Span;
