pub(crate) mod build;
pub(crate) mod debug;
