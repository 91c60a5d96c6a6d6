//! A throwaway PostgreSQL server for the tests that check the services on a real Postgres: a
//! fresh cluster in a temporary directory on a free port, stopped when dropped. When the
//! PostgreSQL binaries are not installed the tests that need it are skipped with a message.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use shop::platform::{config::free_port, storage::Db};

pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl Postgres {
    /// Starts a server, or returns `None` (after saying why) when `initdb` is not installed.
    pub fn start() -> Option<Self> {
        if locate("initdb").is_none() || locate("pg_ctl").is_none() {
            shop::testkit::missing_tool(
                "PostgreSQL (initdb, pg_ctl: neither on PATH nor in /usr/lib/postgresql/*/bin)",
                "scripts/setup.sh installs them",
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
            run(Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        run(as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        run(as_postgres("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .args(["-l"])
            .arg(dir.path().join("server.log"))
            .args(["-o", &options, "start"]));
        Some(Self { dir, port })
    }

    /// Creates database `name` and returns its URL.
    pub async fn database(&self, name: &str) -> String {
        let admin = Db::connect_url(&self.url("postgres"))
            .await
            .expect("connecting to postgres");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin.pool)
            .await
            .expect("creating database");
        admin.pool.close().await;
        self.url(name)
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let stopped = as_postgres("pg_ctl")
            .args(["-m", "immediate", "-w", "-D"])
            .arg(self.data_dir())
            .arg("stop")
            .stdout(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            eprintln!(
                "could not stop the test PostgreSQL in {}",
                self.dir.path().display()
            );
        }
    }
}

/// `binary` from PATH, else from Debian's versioned directory (the `postgresql` package does not
/// put initdb on PATH), newest version first.
fn locate(binary: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(binary))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin").join(binary)))
            .filter(|p| p.is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

/// `binary` run as the postgres user when we are root, else as ourselves.
fn as_postgres(binary: &str) -> Command {
    let binary = locate(binary).unwrap_or_else(|| PathBuf::from(binary));
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(binary);
        command
    } else {
        Command::new(binary)
    }
}

fn run(command: &mut Command) {
    let output = command.output().expect("running a PostgreSQL command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Whether this process runs as root (then PostgreSQL must run as another user).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
