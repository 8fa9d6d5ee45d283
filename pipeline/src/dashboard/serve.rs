//! `rungs serve`: the content-ops dashboard over HTTP (axum). Pages are server-rendered HTML
//! with inline SVG that refresh themselves while work runs; every page has a JSON twin under
//! `/api`, and `/metrics` speaks Prometheus.
//!
//! - Jobs come from a folder of `rungs encode` outputs (`--jobs DIR`) and from a fleet's store
//!   (`--store`, `--queue`); a fill plan (`--plan`) and its journal give the fill page.
//! - It binds to loopback by default; any other address needs `--token`, checked on every
//!   request (`Authorization: Bearer TOKEN`) in constant time.
//! - The `Host` header must name the dashboard: on loopback its own address or `localhost`,
//!   and anywhere a name given with `--allow-host`. A page of another site whose name was
//!   rebound to 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
//! - Job names in URLs are plain names (letters, digits, `.`, `-`, `_`; no leading dot): no
//!   path or key can leave the jobs folder or the store's job prefix.

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;

use super::svg::esc;
use crate::fleet::{self, Fleet};

/// What the dashboard shows.
pub struct ServeOptions {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The bearer token every request must carry, when set.
    pub token: Option<String>,
    /// Other names the `Host` header may give (with or without a port).
    pub allow_hosts: Vec<String>,
    /// A folder of `rungs encode` output folders.
    pub jobs: Option<PathBuf>,
    /// A fleet.
    pub fleet: Option<Arc<Fleet>>,
    /// A fill plan (its journal beside it).
    pub plan: Option<PathBuf>,
}

/// Why the dashboard cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is reachable from other machines and no token guards it.
    #[error("--addr {addr} is not a loopback address: it needs --token (or RUNGS_TOKEN)")]
    NeedsToken {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said (part of the message).
        error: std::io::Error,
    },
    /// The bound socket has no local address.
    #[error("{0}")]
    LocalAddr(std::io::Error),
    /// Serving failed.
    #[error("{0}")]
    Serve(std::io::Error),
    /// The cache folder of fetched reports is not private.
    #[error("{0}")]
    Cache(crate::cache::CacheError),
}

/// Refuses a non-loopback address without a token.
pub fn check_bind(addr: &SocketAddr, token: Option<&str>) -> Result<(), ServeError> {
    if !addr.ip().is_loopback() && token.is_none_or(str::is_empty) {
        return Err(ServeError::NeedsToken { addr: *addr });
    }
    Ok(())
}

/// Equality of two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0);
    }
    diff == 0
}

/// True for a job name a URL may carry.
pub fn plain_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// One job in the list.
#[derive(Clone, Debug, Serialize)]
pub struct JobRow {
    /// Its name.
    pub name: String,
    /// The title: the master's file name, when known.
    pub title: Option<String>,
    /// `local` or `fleet`.
    pub source: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// What it is doing.
    pub stage: Option<String>,
    /// Tasks done and total in that stage.
    pub progress: Option<(usize, usize)>,
    /// Seconds left at the stage's pace so far, when it can be told.
    pub eta_seconds: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The title's rungs, when done.
    pub rungs: Option<usize>,
}

struct App {
    options: ServeOptions,
    /// The bound address.
    local: SocketAddr,
    /// Fetched reports: a folder of this process's own, made fresh (0700) in the user's
    /// private cache, removed when the dashboard stops.
    cache: tempfile::TempDir,
}

type Shared = Arc<App>;

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

impl App {
    fn jobs(&self) -> Vec<JobRow> {
        let mut rows = Vec::new();
        if let Some(dir) = &self.options.jobs
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| plain_name(n))
                .collect();
            names.sort();
            for name in names {
                let d = dir.join(&name);
                let report = read_json(&d.join("report.json"));
                let running = d.join(".rungs").is_dir();
                if report.is_none() && !running {
                    continue;
                }
                // A running local job's stage, from the status its run keeps.
                let status: Option<crate::encode::job::Status> = report
                    .is_none()
                    .then(|| read_json(&d.join(".rungs/status.json")))
                    .flatten()
                    .and_then(|v| serde_json::from_value(v).ok());
                let title = report
                    .as_ref()
                    .and_then(|r| r["master"].as_str())
                    .and_then(|m| Path::new(m).file_name())
                    .map(|n| n.to_string_lossy().into_owned());
                rows.push(JobRow {
                    name,
                    title,
                    source: "local".into(),
                    state: if report.is_some() { "done" } else { "running" }.into(),
                    stage: status.as_ref().map(|s| s.waiting.stage.clone()),
                    progress: status.as_ref().map(|s| (s.waiting.done, s.waiting.total)),
                    eta_seconds: status
                        .as_ref()
                        .and_then(crate::encode::job::Status::eta_seconds),
                    error: None,
                    rungs: report
                        .as_ref()
                        .and_then(|r| r["rungs"].as_array().map(Vec::len)),
                });
            }
        }
        if let Some(f) = &self.options.fleet {
            for name in fleet_jobs(f) {
                let Ok(s) = fleet::status(f, &name) else {
                    continue;
                };
                let title = store::Key::new(format!("jobs/{name}/job.json"))
                    .ok()
                    .and_then(|k| f.store.get(&k).ok())
                    .and_then(|b| serde_json::from_slice::<crate::encode::job::JobSpec>(&b).ok())
                    .map(|spec| spec.master.display().to_string_lossy().into_owned());
                rows.push(JobRow {
                    name,
                    title,
                    source: "fleet".into(),
                    state: s.state.clone(),
                    stage: s.waiting.as_ref().map(|w| w.stage.clone()),
                    progress: s.waiting.as_ref().map(|w| (w.done, w.total)),
                    eta_seconds: s.eta_seconds,
                    error: s.error.clone(),
                    rungs: None,
                });
            }
        }
        rows
    }

    /// A job's report (done) or status (running), by name.
    fn job(&self, name: &str) -> Option<(Value, Option<PathBuf>)> {
        if let Some(dir) = &self.options.jobs {
            let d = dir.join(name);
            if let Some(r) = read_json(&d.join("report.json")) {
                return Some((r, Some(d)));
            }
            if d.join(".rungs").is_dir() {
                return Some((serde_json::json!({ "state": "running" }), None));
            }
        }
        let f = self.options.fleet.as_ref()?;
        fleet::check_job(name).ok()?;
        // A finished fleet job: its report and thumbnails, fetched once into this process's
        // private cache folder.
        let cached = self.cache.path().join(name);
        if let Some(r) = read_json(&cached.join("report.json")) {
            return Some((r, Some(cached)));
        }
        if fleet::fetch_report(&*f.store, name, &cached).ok()?
            && let Some(r) = read_json(&cached.join("report.json"))
        {
            return Some((r, Some(cached)));
        }
        let s = fleet::status(f, name).ok()?;
        Some((serde_json::to_value(s).ok()?, None))
    }

    fn fill(&self) -> Option<Value> {
        let plan_path = self.options.plan.as_ref()?;
        let plan: packager::fill::FillPlan =
            serde_json::from_slice(&std::fs::read(plan_path).ok()?).ok()?;
        let journal = packager::fill::run::RunOptions::for_plan(plan_path).journal;
        let done: std::collections::BTreeSet<(String, String)> = std::fs::read_to_string(journal)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, k)| (a.to_owned(), k.to_owned()))
            .collect();
        let appliances: Vec<Value> = plan
            .appliances
            .iter()
            .map(|a| {
                let (mut files, mut bytes) = (0usize, 0u64);
                for f in &plan.files {
                    if f.on.iter().any(|p| p.appliance == a.name)
                        && done.contains(&(a.name.clone(), f.file.key.clone()))
                    {
                        files += 1;
                        bytes += f.file.size;
                    }
                }
                serde_json::json!({
                    "name": a.name, "site": a.site, "tier": a.tier, "capacity": a.capacity,
                    "planned_files": a.files, "planned_bytes": a.bytes,
                    "filled_files": files, "filled_bytes": bytes,
                })
            })
            .collect();
        Some(serde_json::json!({ "appliances": appliances, "titles": plan.titles }))
    }
}

/// The names of a fleet's jobs: one level of the store's `jobs/`, whatever the jobs hold.
fn fleet_jobs(f: &Fleet) -> Vec<String> {
    let Ok(prefix) = store::Key::new("jobs") else {
        return Vec::new();
    };
    f.store
        .children(&prefix)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| fleet::check_job(n).is_ok())
        .collect()
}

fn page(title: &str, refresh: bool, body: &str) -> Html<String> {
    let meta = if refresh {
        "<meta http-equiv=\"refresh\" content=\"3\">"
    } else {
        ""
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{meta}<title>{t} · rungs</title>\
         <style>body{{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ddd;padding:4px 8px}}th{{background:#f4f4f4}}.bar{{background:#1f77b4;height:10px}}\
         .track{{background:#eee;width:200px}}nav a{{margin-right:12px}}</style></head><body>\
         <nav><a href=\"/\">Jobs</a><a href=\"/fill\">Fill</a></nav><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    ))
}

fn progress_bar(done: u64, total: u64) -> String {
    let pct = if total == 0 {
        0.0
    } else {
        done as f64 / total as f64 * 100.0
    };
    format!(
        "<div class=\"track\"><div class=\"bar progress\" style=\"width:{pct:.1}%\"></div></div>"
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a dashboard task panicked")
}

async fn jobs_page(State(app): State<Shared>) -> Html<String> {
    let rows = blocking(move || app.jobs()).await;
    let mut b = String::from(
        "<table id=\"jobs\"><tr><th>job</th><th>title</th><th>source</th><th>state</th><th>stage</th><th>progress</th><th>stage ETA</th><th>error</th></tr>",
    );
    for r in &rows {
        let (done, total) = r.progress.unwrap_or((0, 0));
        let _ = write!(
            b,
            "<tr class=\"job {state}\"><td><a href=\"/jobs/{n}\">{n}</a></td><td>{title}</td><td>{src}</td><td>{state}</td><td>{stage}</td><td>{bar}{prog}</td><td>{eta}</td><td>{err}</td></tr>",
            n = esc(&r.name),
            title = esc(r.title.as_deref().unwrap_or("")),
            src = esc(&r.source),
            state = esc(&r.state),
            stage = esc(r.stage.as_deref().unwrap_or("")),
            bar = if r.progress.is_some() {
                progress_bar(done as u64, total as u64)
            } else {
                String::new()
            },
            prog = r
                .progress
                .map(|(d, t)| format!(" {d}/{t}"))
                .unwrap_or_default(),
            eta = r
                .eta_seconds
                .map(|s| format!("{}:{:02}", s / 60, s % 60))
                .unwrap_or_default(),
            err = esc(r.error.as_deref().unwrap_or("")),
        );
        if r.state == "failed" && r.source == "fleet" {
            let _ = write!(
                b,
                "<tr><td colspan=\"8\"><button class=\"retry\" data-job=\"{n}\">retry {n}</button></td></tr>",
                n = esc(&r.name)
            );
        }
    }
    b.push_str("</table>");
    let live = rows
        .iter()
        .any(|r| r.state == "running" || r.state == "queued");
    page("Jobs", live, &b)
}

async fn jobs_api(State(app): State<Shared>) -> Json<Vec<JobRow>> {
    Json(blocking(move || app.jobs()).await)
}

fn bad_name() -> Response {
    (StatusCode::BAD_REQUEST, "not a job name").into_response()
}

async fn job_page(State(app): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    if !plain_name(&name) {
        return bad_name();
    }
    let n = name.clone();
    match blocking(move || app.job(&n)).await {
        Some((report, Some(dir))) if report.get("rungs").is_some() => {
            // Read again as bytes, so that an error names the file's own line and column.
            let parsed = match std::fs::read(dir.join("report.json")) {
                Ok(b) => super::TitleReport::parse(&b).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match parsed {
                Ok(r) => Html(super::title_page(&r, Some(&dir))).into_response(),
                Err(e) => page(
                    &name,
                    false,
                    &format!(
                        "<p id=\"unreadable\">This job's report cannot be shown: {}</p>",
                        esc(&format!("report.json: {e}"))
                    ),
                )
                .into_response(),
            }
        }
        Some((status, _)) => page(
            &name,
            true,
            &format!(
                "<pre id=\"status\">{}</pre>",
                esc(&serde_json::to_string_pretty(&status).unwrap_or_default())
            ),
        )
        .into_response(),
        None => (StatusCode::NOT_FOUND, "no such job").into_response(),
    }
}

async fn job_api(State(app): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    if !plain_name(&name) {
        return bad_name();
    }
    match blocking(move || app.job(&name)).await {
        Some((v, _)) => Json(v).into_response(),
        None => (StatusCode::NOT_FOUND, "no such job").into_response(),
    }
}

/// Retries a failed fleet job. Only a request with the `X-Rungs-Action: retry` header counts:
/// a page of another site cannot send it without a CORS preflight, which is never granted.
async fn retry_api(
    State(app): State<Shared>,
    UrlPath(name): UrlPath<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !plain_name(&name) {
        return bad_name();
    }
    if headers.get("x-rungs-action").and_then(|v| v.to_str().ok()) != Some("retry") {
        return (
            StatusCode::FORBIDDEN,
            "send the header X-Rungs-Action: retry",
        )
            .into_response();
    }
    let Some(f) = app.options.fleet.clone() else {
        return (StatusCode::NOT_FOUND, "no fleet").into_response();
    };
    match blocking(move || fleet::retry(&f, &name, fleet::STALLED_AFTER)).await {
        Ok(attempt) => Json(serde_json::json!({ "attempt": attempt })).into_response(),
        Err(e) => (StatusCode::CONFLICT, e.to_string()).into_response(),
    }
}

async fn fill_page(State(app): State<Shared>) -> Response {
    let Some(fill) = blocking(move || app.fill()).await else {
        return page(
            "Fill",
            false,
            "<p>No fill plan (start with --plan PLAN.json).</p>",
        )
        .into_response();
    };
    let mut b = String::from(
        "<table id=\"appliances\"><tr><th>appliance</th><th>site</th><th>tier</th><th>planned</th><th>filled</th><th></th></tr>",
    );
    let mut live = false;
    for a in fill["appliances"].as_array().into_iter().flatten() {
        let (pf, ff) = (
            a["planned_files"].as_u64().unwrap_or(0),
            a["filled_files"].as_u64().unwrap_or(0),
        );
        live |= ff < pf;
        let _ = write!(
            b,
            "<tr class=\"appliance\"><td>{}</td><td>{}</td><td>{}</td><td>{pf} files, {} bytes</td><td>{ff} files, {} bytes</td><td>{}</td></tr>",
            esc(a["name"].as_str().unwrap_or("")),
            esc(a["site"].as_str().unwrap_or("")),
            esc(a["tier"].as_str().unwrap_or("")),
            a["planned_bytes"],
            a["filled_bytes"],
            progress_bar(ff, pf)
        );
    }
    b.push_str("</table>");
    page("Fill", live, &b).into_response()
}

async fn fill_api(State(app): State<Shared>) -> Response {
    match blocking(move || app.fill()).await {
        Some(v) => Json(v).into_response(),
        None => (StatusCode::NOT_FOUND, "no fill plan").into_response(),
    }
}

async fn metrics(State(app): State<Shared>) -> Response {
    let text = blocking(move || {
        let rows = app.jobs();
        let mut m = String::new();
        m.push_str("# HELP rungs_jobs Jobs by state.\n# TYPE rungs_jobs gauge\n");
        for state in ["queued", "running", "stalled", "done", "failed"] {
            let n = rows.iter().filter(|r| r.state == state).count();
            let _ = writeln!(m, "rungs_jobs{{state=\"{state}\"}} {n}");
        }
        m.push_str("# HELP rungs_job_failures Jobs that failed.\n# TYPE rungs_job_failures gauge\n");
        let _ = writeln!(m, "rungs_job_failures {}", rows.iter().filter(|r| r.error.is_some()).count());
        if let Some(f) = &app.options.fleet
            && let Ok(c) = f.queue.counts()
        {
            m.push_str("# HELP rungs_tasks Tasks in the queue by state.\n# TYPE rungs_tasks gauge\n");
            for (s, n) in [("pending", c.pending), ("in_flight", c.in_flight), ("done", c.done), ("dead", c.dead)] {
                let _ = writeln!(m, "rungs_tasks{{state=\"{s}\"}} {n}");
            }
            let _ = writeln!(m, "# HELP rungs_queue_depth Tasks waiting.\n# TYPE rungs_queue_depth gauge\nrungs_queue_depth {}", c.pending);
        }
        // Encode speed of the finished local jobs: frames of all rungs per encode CPU second.
        let (mut frames, mut cpu) = (0.0, 0.0);
        if let Some(dir) = &app.options.jobs {
            for r in rows.iter().filter(|r| r.source == "local" && r.state == "done") {
                if let Some(rep) = read_json(&dir.join(&r.name).join("report.json")) {
                    frames += rep["frames"].as_f64().unwrap_or(0.0)
                        * rep["rungs"].as_array().map_or(0, Vec::len) as f64;
                    cpu += rep["encode_cpu_seconds"].as_f64().unwrap_or(0.0);
                }
            }
        }
        let _ = writeln!(
            m,
            "# HELP rungs_encode_fps Frames encoded per CPU second, finished jobs.\n# TYPE rungs_encode_fps gauge\nrungs_encode_fps {:.3}",
            if cpu > 0.0 { frames / cpu } else { 0.0 }
        );
        let mut published = 0u64;
        if let Some(dir) = &app.options.jobs {
            for r in rows.iter().filter(|r| r.source == "local") {
                if let Some(p) = read_json(&dir.join(&r.name).join(".rungs/publish.json")) {
                    published += p["bytes"].as_u64().unwrap_or(0);
                }
            }
        }
        let _ = writeln!(
            m,
            "# HELP rungs_published_bytes Bytes of the titles published to S3.\n# TYPE rungs_published_bytes gauge\nrungs_published_bytes {published}"
        );
        if let Some(fill) = app.fill() {
            let sum = |k: &str| -> u64 {
                fill["appliances"].as_array().into_iter().flatten().map(|a| a[k].as_u64().unwrap_or(0)).sum()
            };
            let _ = writeln!(
                m,
                "# HELP rungs_fill_bytes Bytes planned and filled on the appliances.\n# TYPE rungs_fill_bytes gauge\nrungs_fill_bytes{{state=\"planned\"}} {}\nrungs_fill_bytes{{state=\"filled\"}} {}",
                sum("planned_bytes"),
                sum("filled_bytes")
            );
        }
        m
    })
    .await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn auth(State(app): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &app.options.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given.as_bytes(), token.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a token is needed",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// True when `host` (a `Host` header) names the dashboard bound at `bound`: a name of
/// `allowed` (any port), or, when bound to loopback, the loopback address or `localhost` at the
/// bound port. Off loopback, without `allowed`, any host goes (the token guards it).
pub fn host_allowed(host: &str, bound: SocketAddr, allowed: &[String]) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let (name, port) = match host.rsplit_once(':') {
        // An IPv6 literal without a port has colons inside its brackets.
        Some((n, p)) if !p.contains(']') => (n.to_owned(), p.parse::<u16>().ok()),
        _ => (host.clone(), None),
    };
    if name.is_empty() {
        return false;
    }
    let listed = allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        a == host || a == name
    });
    if listed {
        return true;
    }
    if !bound.ip().is_loopback() {
        return allowed.is_empty();
    }
    let own = bound.ip().to_string();
    let named = matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]")
        || name == own
        || name == format!("[{own}]");
    named && port.is_none_or(|p| p == bound.port())
}

async fn check_host(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(h) if host_allowed(&h, app.local, &app.options.allow_hosts) => next.run(request).await,
        Some(h) => (
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "Host {h:?} is not this dashboard's address ({}); add the name with --allow-host",
                app.local
            ),
        )
            .into_response(),
        None => (StatusCode::BAD_REQUEST, "a Host header is needed").into_response(),
    }
}

/// The router.
fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(jobs_page))
        .route("/jobs/{name}", get(job_page))
        .route("/fill", get(fill_page))
        .route("/api/jobs", get(jobs_api))
        .route("/api/jobs/{name}", get(job_api))
        .route("/api/jobs/{name}/retry", post(retry_api))
        .route("/api/fill", get(fill_api))
        .route("/metrics", get(metrics))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .layer(middleware::from_fn_with_state(app.clone(), auth))
        .layer(middleware::from_fn_with_state(app.clone(), check_host))
        .with_state(app)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    check_bind(&options.addr, options.token.as_deref())?;
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|error| ServeError::Listen {
            addr: options.addr,
            error,
        })?;
    let local = listener.local_addr().map_err(ServeError::LocalAddr)?;
    ready(local);
    let base = crate::cache::default_dir("dashboard");
    crate::cache::ensure_private(&base).map_err(ServeError::Cache)?;
    let cache = tempfile::Builder::new()
        .prefix("serve-")
        .tempdir_in(&base)
        .map_err(|error| ServeError::Cache(crate::cache::CacheError::Io { path: base, error }))?;
    let app = Arc::new(App {
        options,
        local,
        cache,
    });
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_names_and_binds() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(
            !same_secret(b"abc", b"abd") && !same_secret(b"abc", b"ab") && !same_secret(b"", b"a")
        );
        for bad in ["..", ".rungs", "a/b", "", "a b", "%2e%2e"] {
            assert!(!plain_name(bad), "{bad}");
        }
        assert!(plain_name("film-20261130-101542-00af"));
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_bind(&any, None).is_err());
        assert!(check_bind(&any, Some("t")).is_ok());
        assert!(check_bind(&"127.0.0.1:0".parse().unwrap(), None).is_ok());
    }

    #[test]
    fn only_the_dashboards_own_names_pass_the_host_check() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let none: &[String] = &[];
        for good in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "127.0.0.1"] {
            assert!(host_allowed(good, lo, none), "{good}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "127.0.0.1:9999",
            "",
            ":8080",
            "127.0.0.1.evil.example:8080",
        ] {
            assert!(!host_allowed(bad, lo, none), "{bad}");
        }
        let named = ["dash.internal".to_owned()];
        assert!(host_allowed("dash.internal:8080", lo, &named));
        let v6: SocketAddr = "[::1]:7000".parse().unwrap();
        assert!(host_allowed("[::1]:7000", v6, none) && host_allowed("[::1]", v6, none));
        assert!(!host_allowed("[::1]:7001", v6, none));
        // Off loopback the token guards; a list, when given, still holds.
        let any: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert!(host_allowed("anything", any, none));
        assert!(
            !host_allowed("anything", any, &named) && host_allowed("dash.internal", any, &named)
        );
    }
}
