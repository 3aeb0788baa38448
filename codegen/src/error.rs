//! Errors of the generator.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The declaration does not parse or does not pass the IR's checks; holds the rendered
    /// `path:line:col: error: message` lines.
    #[error("{0}")]
    Declaration(String),
    /// The IR refers to something it does not define (a bug of the IR's checks).
    #[error("inconsistent IR: {0}")]
    Ir(String),
    #[error("template `{name}`: {source}")]
    Template {
        name: String,
        #[source]
        source: Box<handlebars::RenderError>,
    },
    #[error("template registration: {0}")]
    TemplateRegistration(#[from] Box<handlebars::TemplateError>),
    /// The config file (`codegen.json`) or a layout is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A rendered file that does not parse as TypeScript (a bug of a template).
    #[error("formatting {path}: {message}")]
    Format { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
