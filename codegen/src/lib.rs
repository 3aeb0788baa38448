//! Generates the Convex side of the storage from THE declaration (`src/declaration.rs`): the
//! component (schema, validators, functions, limits), its auth-protected public API, the app
//! module exposing it, and the `_generated` files `npx convex codegen` would write, so that the
//! TypeScript type-checks without a deployment.
//!
//! [`render`] is pure and deterministic; [`generate`] writes what changed and removes stale
//! files; [`check`] reports (with diffs) what `generate` would change, for CI.

mod error;
pub mod format;
mod templates;
pub mod view;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use durable_execution_storage_convex_ir::{parse_declaration_file, Component};

pub use error::Error;
use templates::Templates;

/// A path relative to the repository root, with `/` separators (`generated/component/lib.ts`).
pub type RelativePath = String;

/// Where the generated files go, relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLayout {
    /// The component's npm package: everything under it is generated (stale files there are
    /// removed), including its `package.json`.
    pub generated_dir: String,
    /// The component's functions directory (holds `convex.config.ts`).
    pub component_dir: String,
    /// The public API module (`.ts`).
    pub public_api: String,
    /// The app's functions directory; its `_generated/` and the app module are generated, the
    /// rest (its `convex.config.ts`) is not.
    pub app_dir: String,
    /// The npm name of the component package when the app installs it (`"file:"` dependency):
    /// the app module then imports the public API through it, as from a published component.
    /// `None`: the app imports it by relative path, and the package is named after the
    /// component (`jobQueue` → `job-queue-component`).
    pub package: Option<String>,
}

impl Default for OutputLayout {
    /// The repository's own component: `generated/`, installed by `convex/` as
    /// [`DEFAULT_PACKAGE`], and `convex/app`.
    fn default() -> Self {
        OutputLayout {
            package: Some(DEFAULT_PACKAGE.to_owned()),
            ..OutputLayout::new("generated", "convex/app")
        }
    }
}

impl OutputLayout {
    /// The component package in `out` (`out/component/`, `out/publicApi.ts`,
    /// `out/package.json`) and the app module in `app`, both relative to the root.
    pub fn new(out: &str, app: &str) -> Self {
        let out = out.trim_end_matches('/');
        OutputLayout {
            generated_dir: out.to_owned(),
            component_dir: format!("{out}/component"),
            public_api: format!("{out}/publicApi.ts"),
            app_dir: app.trim_end_matches('/').to_owned(),
            package: None,
        }
    }

    /// How the app module imports the public API: through the package when the app installs
    /// it, else by relative path.
    pub fn public_api_import(&self) -> String {
        match &self.package {
            Some(package) => format!("{package}/publicApi"),
            None => view::relative_module(&self.app_dir, &self.public_api_module()),
        }
    }

    /// The public API module's import path (without extension).
    pub fn public_api_module(&self) -> String {
        self.public_api
            .strip_suffix(".ts")
            .unwrap_or(&self.public_api)
            .to_owned()
    }

    /// Directories whose every file is generated.
    pub fn managed_dirs(&self) -> Vec<String> {
        vec![
            self.generated_dir.clone(),
            format!("{}/_generated", self.app_dir),
        ]
    }
}

/// What [`generate`] and [`check`] work on: one declaration and where its output goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The repository root.
    pub root: PathBuf,
    /// The declaration, relative to `root` (or absolute).
    pub declaration: PathBuf,
    pub layout: OutputLayout,
}

impl Options {
    /// The repository's own declaration (`src/declaration.rs`) and layout.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Options {
            root: root.into(),
            declaration: PathBuf::from(DEFAULT_DECLARATION),
            layout: OutputLayout::default(),
        }
    }

    /// Every target of the config file `config` (relative to `root`), or [`Options::new`]
    /// alone when there is no such file. See [`Config`] for its format.
    pub fn from_config(root: impl Into<PathBuf>, config: &Path) -> Result<Vec<Self>, Error> {
        let root = root.into();
        let path = root.join(config);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(vec![Options::new(root)])
            }
            Err(error) => return Err(Error::io(&path, error)),
        };
        let parsed: Config = serde_json::from_str(&text)
            .map_err(|error| Error::Config(format!("{}: {error}", display_path(config))))?;
        if parsed.targets.is_empty() {
            return Err(Error::Config(format!(
                "{}: `targets` is empty",
                display_path(config)
            )));
        }
        Ok(parsed
            .targets
            .into_iter()
            .map(|target| Options {
                root: root.clone(),
                declaration: target.declaration,
                layout: OutputLayout {
                    package: target.package,
                    ..OutputLayout::new(&target.out, &target.app)
                },
            })
            .collect())
    }

    fn declaration_path(&self) -> PathBuf {
        self.root.join(&self.declaration)
    }
}

/// The npm name of the repository's own component package (`generated/package.json`).
pub const DEFAULT_PACKAGE: &str = "@durable-execution/storage-convex-component";

/// The declaration of [`Options::new`].
pub const DEFAULT_DECLARATION: &str = "src/declaration.rs";

/// The file the CLI reads its targets from, at the root, when given no `--declaration`.
pub const DEFAULT_CONFIG: &str = "codegen.json";

/// The config file (`codegen.json`): the declarations of the repository and where each one's
/// output goes, all paths relative to the root.
///
/// ```json
/// { "targets": [
///     { "declaration": "src/declaration.rs", "out": "generated", "app": "convex/app",
///       "package": "@durable-execution/storage-convex-component" },
///     { "declaration": "examples/job_queue/src/lib.rs",
///       "out": "examples/job_queue/generated", "app": "examples/job_queue/app" } ] }
/// ```
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub targets: Vec<Target>,
}

/// One declaration and its output ([`OutputLayout::new`]).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The file holding the `#[convex_component]` module.
    pub declaration: PathBuf,
    /// The component's npm package directory.
    pub out: String,
    /// The app's functions directory.
    pub app: String,
    /// [`OutputLayout::package`].
    #[serde(default)]
    pub package: Option<String>,
}

/// Every generated file, by path relative to the repository root, for the default declaration
/// and layout.
pub fn render(component: &Component) -> Result<BTreeMap<RelativePath, String>, Error> {
    render_with_layout(component, DEFAULT_DECLARATION, &OutputLayout::default())
}

/// Every generated file, by path relative to the repository root, of the declaration at
/// `declaration` (relative to the root: named in every file's header).
pub fn render_with_layout(
    component: &Component,
    declaration: &str,
    layout: &OutputLayout,
) -> Result<BTreeMap<RelativePath, String>, Error> {
    let templates = Templates::new(declaration)?;
    let component_dir = &layout.component_dir;
    let app_generated = format!("{}/_generated", layout.app_dir);
    let mut files = BTreeMap::new();

    // The component's modules (every file of its directory but the config and the schema, which
    // `_generated/api.ts` lists).
    let mut modules = BTreeMap::new();
    modules.insert(
        "validators",
        templates.render(
            templates::COMPONENT_VALIDATORS,
            &view::validators::build(component)?,
        )?,
    );
    modules.insert(
        "budget",
        templates.render(templates::COMPONENT_BUDGET, &())?,
    );
    modules.insert(
        "checks",
        templates.render(
            templates::COMPONENT_CHECKS,
            &view::checks::build(component)?,
        )?,
    );
    modules.insert(
        "clock",
        templates.render(templates::COMPONENT_CLOCK, &view::clock::build(component))?,
    );
    modules.insert(
        "filters",
        templates.render(templates::COMPONENT_FILTERS, &())?,
    );
    modules.insert(
        "limits",
        templates.render(
            templates::COMPONENT_LIMITS,
            &view::functions::build_limits(component),
        )?,
    );
    modules.insert(
        "lib",
        templates.render(
            templates::COMPONENT_LIB,
            &view::functions::build_lib(component)?,
        )?,
    );
    files.insert(
        format!("{component_dir}/_generated/api.ts"),
        templates.render(
            templates::GENERATED_API,
            &view::component_generated_api(modules.keys().map(|m| (*m).to_owned()).collect()),
        )?,
    );
    for (module, text) in modules {
        files.insert(format!("{component_dir}/{module}.ts"), text);
    }

    let component_file = view::component_file(component);
    files.insert(
        format!("{component_dir}/convex.config.ts"),
        templates.render(templates::COMPONENT_CONVEX_CONFIG, &component_file)?,
    );
    files.insert(
        format!("{component_dir}/schema.ts"),
        templates.render(templates::COMPONENT_SCHEMA, &component_file)?,
    );
    files.insert(
        format!("{component_dir}/_generated/server.ts"),
        templates.render(templates::GENERATED_SERVER, &())?,
    );
    files.insert(
        format!("{component_dir}/_generated/dataModel.ts"),
        templates.render(templates::COMPONENT_GENERATED_DATA_MODEL, &())?,
    );
    files.insert(
        format!("{component_dir}/_generated/component.ts"),
        templates.render(
            templates::COMPONENT_GENERATED_COMPONENT,
            &view::component_api(component)?,
        )?,
    );
    files.insert(
        layout.public_api.clone(),
        templates.render(templates::PUBLIC_API, &view::public_api::build(component)?)?,
    );
    files.insert(
        format!("{}/{}.ts", layout.app_dir, component.app_module),
        templates.render(templates::APP_MODULE, &view::app_module(component, layout))?,
    );
    files.insert(
        format!("{app_generated}/api.ts"),
        templates.render(
            templates::GENERATED_API,
            &view::app_generated_api(component, layout),
        )?,
    );
    files.insert(
        format!("{app_generated}/server.ts"),
        templates.render(templates::GENERATED_SERVER, &())?,
    );
    files.insert(
        format!("{app_generated}/dataModel.ts"),
        templates.render(templates::APP_GENERATED_DATA_MODEL, &())?,
    );
    // One place lays out every file: the templates print the code's shape only.
    files
        .into_iter()
        .map(|(path, text)| {
            let formatted = format::typescript(&path, text)?;
            Ok((path, formatted))
        })
        .collect()
}

/// Every file of a target, by path relative to the repository root: [`render_with_layout`]'s
/// TypeScript and the component package's `package.json`.
pub fn render_target(
    component: &Component,
    options: &Options,
) -> Result<BTreeMap<RelativePath, String>, Error> {
    let mut files = render_with_layout(
        component,
        &display_path(&options.declaration),
        &options.layout,
    )?;
    files.insert(
        format!("{}/package.json", options.layout.generated_dir),
        package_manifest(component, options)?,
    );
    Ok(files)
}

/// The range of `convex` versions the generated code is tested with (`convex/package.json`).
pub const CONVEX_PEER_RANGE: &str = "^1.48.0";

/// The component package's `package.json`: named [`OutputLayout::package`] or after the
/// component (`jobQueue` → `job-queue-component`), `convex` as a peer dependency (the app's copy is used), and the
/// entry points an app imports: `./convex.config` (for `app.use`) and `./publicApi`.
/// JSON rather than TypeScript, so it is serialized here rather than rendered by a template.
fn package_manifest(component: &Component, options: &Options) -> Result<String, Error> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Manifest {
        name: String,
        version: &'static str,
        private: bool,
        description: String,
        #[serde(rename = "type")]
        module_type: &'static str,
        exports: Exports,
        peer_dependencies: PeerDependencies,
    }
    #[derive(serde::Serialize)]
    struct Exports {
        #[serde(rename = "./convex.config")]
        convex_config: String,
        #[serde(rename = "./publicApi")]
        public_api: String,
    }
    #[derive(serde::Serialize)]
    struct PeerDependencies {
        convex: &'static str,
    }
    let layout = &options.layout;
    let inside = |path: &str| -> Result<String, Error> {
        path.strip_prefix(&layout.generated_dir)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(|rest| format!("./{rest}"))
            .ok_or_else(|| {
                Error::Config(format!(
                    "{path} is outside the component package {}",
                    layout.generated_dir
                ))
            })
    };
    let name = layout.package.clone().unwrap_or_else(|| {
        format!(
            "{}-component",
            durable_execution_storage_convex_ir::names::snake_case(&component.name)
                .replace('_', "-")
        )
    });
    let manifest = Manifest {
        name,
        version: env!("CARGO_PKG_VERSION"),
        private: true,
        description: format!(
            "@generated by durable-execution-storage-convex-codegen from {}. DO NOT EDIT. \
             The Convex component `{}` and its auth-protected public API.",
            display_path(&options.declaration),
            component.name
        ),
        module_type: "module",
        exports: Exports {
            convex_config: inside(&format!("{}/convex.config.ts", layout.component_dir))?,
            public_api: inside(&layout.public_api)?,
        },
        peer_dependencies: PeerDependencies {
            convex: CONVEX_PEER_RANGE,
        },
    };
    let mut json = serde_json::to_string_pretty(&manifest)
        .map_err(|error| Error::Config(format!("package.json: {error}")))?;
    json.push('\n');
    Ok(json)
}

/// Reads and parses the declaration; errors render as `path:line:col: error: message`.
pub fn load_declaration(options: &Options) -> Result<Component, Error> {
    let path = options.declaration_path();
    let source = fs::read_to_string(&path).map_err(|error| Error::io(&path, error))?;
    parse_declaration_file(&source)
        .map_err(|error| Error::Declaration(error.render(&display_path(&options.declaration))))
}

fn display_path(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// What [`generate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub written: Vec<RelativePath>,
    pub unchanged: Vec<RelativePath>,
    pub removed: Vec<RelativePath>,
    pub elapsed: Duration,
}

/// Renders the declaration and writes the files whose content changed; removes files of the
/// generated directories that are no longer generated. Hand-written files are never touched.
pub fn generate(options: &Options) -> Result<Report, Error> {
    let started = Instant::now();
    let component = load_declaration(options)?;
    let files = render_target(&component, options)?;
    let mut report = Report::default();
    for (path, content) in &files {
        let absolute = options.root.join(path);
        match fs::read(&absolute) {
            Ok(existing) if existing == content.as_bytes() => {
                report.unchanged.push(path.clone());
                continue;
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::io(&absolute, error)),
        }
        if let Some(parent) = absolute.parent() {
            fs::create_dir_all(parent).map_err(|error| Error::io(parent, error))?;
        }
        fs::write(&absolute, content).map_err(|error| Error::io(&absolute, error))?;
        report.written.push(path.clone());
    }
    for path in stale_files(options, &files)? {
        let absolute = options.root.join(&path);
        fs::remove_file(&absolute).map_err(|error| Error::io(&absolute, error))?;
        report.removed.push(path);
    }
    remove_empty_dirs(options)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Files whose content differs, with a unified diff (committed → generated).
    pub changed: Vec<(RelativePath, String)>,
    pub missing: Vec<RelativePath>,
    /// Files of the generated directories that are no longer generated.
    pub stale: Vec<RelativePath>,
}

impl CheckReport {
    pub fn is_up_to_date(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.stale.is_empty()
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (_, diff) in &self.changed {
            write!(f, "{diff}")?;
        }
        for path in &self.missing {
            writeln!(f, "missing: {path}")?;
        }
        for path in &self.stale {
            writeln!(f, "stale (no longer generated): {path}")?;
        }
        Ok(())
    }
}

/// Compares the files on disk with what [`generate`] would write, without writing anything.
pub fn check(options: &Options) -> Result<CheckReport, Error> {
    let component = load_declaration(options)?;
    let files = render_target(&component, options)?;
    let mut report = CheckReport::default();
    for (path, content) in &files {
        let absolute = options.root.join(path);
        match fs::read(&absolute) {
            Ok(existing) if existing == content.as_bytes() => {}
            Ok(existing) => {
                let existing = String::from_utf8_lossy(&existing);
                let diff = similar::TextDiff::from_lines(existing.as_ref(), content.as_str())
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{path}"), &format!("b/{path}"))
                    .to_string();
                report.changed.push((path.clone(), diff));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                report.missing.push(path.clone());
            }
            Err(error) => return Err(Error::io(&absolute, error)),
        }
    }
    report.stale = stale_files(options, &files)?;
    Ok(report)
}

/// Files under the managed directories that are not in `files`, sorted.
fn stale_files(
    options: &Options,
    files: &BTreeMap<RelativePath, String>,
) -> Result<Vec<RelativePath>, Error> {
    let mut stale = Vec::new();
    for dir in options.layout.managed_dirs() {
        let mut found = Vec::new();
        list_files(&options.root, &dir, &mut found)?;
        stale.extend(found.into_iter().filter(|path| !files.contains_key(path)));
    }
    stale.sort();
    stale.dedup();
    Ok(stale)
}

fn list_files(root: &Path, dir: &str, out: &mut Vec<RelativePath>) -> Result<(), Error> {
    let absolute = root.join(dir);
    let entries = match fs::read_dir(&absolute) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(Error::io(&absolute, error)),
    };
    for entry in entries {
        let entry = entry.map_err(|error| Error::io(&absolute, error))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A component package may have its own dependencies installed (`npm install` in it):
        // they are not outputs.
        if name == "node_modules" {
            continue;
        }
        let relative = format!("{dir}/{name}");
        let file_type = entry
            .file_type()
            .map_err(|error| Error::io(entry.path(), error))?;
        if file_type.is_dir() {
            list_files(root, &relative, out)?;
        } else {
            out.push(relative);
        }
    }
    Ok(())
}

/// Removes directories left empty under the managed directories (not the roots themselves).
fn remove_empty_dirs(options: &Options) -> Result<(), Error> {
    fn prune(path: &Path) -> Result<bool, Error> {
        let mut empty = true;
        let entries = match fs::read_dir(path) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(Error::io(path, error)),
        };
        for entry in entries {
            let entry = entry.map_err(|error| Error::io(path, error))?;
            let child = entry.path();
            if child.is_dir() && prune(&child)? {
                fs::remove_dir(&child).map_err(|error| Error::io(&child, error))?;
            } else {
                empty = false;
            }
        }
        Ok(empty)
    }
    for dir in options.layout.managed_dirs() {
        prune(&options.root.join(dir))?;
    }
    Ok(())
}
