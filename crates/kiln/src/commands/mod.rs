pub(crate) mod build;
