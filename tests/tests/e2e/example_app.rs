//! The notes example (`examples/notes-iframe`): the npm package packed and installed like a user
//! would, a host page minting the token and embedding the app from another origin, and a
//! Playwright (`playwright-core` + Debian's Chromium) walk through it in which two tabs edit the
//! same note and the second save shows the conflict, run twice: on the app as plain ES modules
//! and on the bundle Vite builds from the installed package. The screenshots of that moment are
//! kept at `target/artifacts/notes-conflict.png` and `notes-conflict-vite.png`. The package's
//! TypeScript declarations are type-checked with `tsc --strict` against a file using the whole
//! API (`typecheck.ts`).

use alga_storage_tests::{as_from_a_shell, guides, snippets, TestServer};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(what: &str, command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes each `ts` block of the docs as a module of its own into `dir` (what it calls but does
/// not define is declared first), and each `ts declare` block (an API summary) as an ambient
/// module importing the package's types.
fn write_snippets(root: &Path, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut docs = guides();
    docs.push(root.join("sdk-web/README.md"));
    let declarations = std::fs::read_to_string(
        root.join("examples/notes-iframe/node_modules/alga-storage-web/alga_storage_web.d.ts"),
    )
    .expect("the package is installed");
    let exported: Vec<&str> = declarations
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| {
            let l = l.strip_prefix("declare ").unwrap_or(l);
            let name = ["type ", "interface ", "class ", "function "]
                .iter()
                .find_map(|k| l.strip_prefix(k))?;
            name.split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
        })
        .collect();
    let mut written = 0;
    for (index, doc) in docs.iter().enumerate() {
        let name = doc.file_stem().unwrap().to_string_lossy().into_owned();
        for (n, snippet) in snippets(doc).iter().enumerate() {
            let body = snippet.text.as_str();
            let file = dir.join(format!("{index}-{name}-{n}.ts"));
            let source = match snippet.info.as_str() {
                "ts" => {
                    let mut prelude = String::from(
                        "declare function askHostForToken(): Promise<string>;\n\
                         declare function getTokenFromHost(): string;\n",
                    );
                    if !body.contains("const client") {
                        prelude.push_str(
                            "declare const client: import(\"alga-storage-web\").StorageClient;\n",
                        );
                    }
                    format!("{prelude}{body}\nexport {{}};\n")
                }
                "ts declare" => {
                    let imports: Vec<&str> = exported
                        .iter()
                        .copied()
                        .filter(|e| !body.contains(&format!("class {e} ")))
                        .filter(|e| !body.contains(&format!("function {e}(")))
                        .collect();
                    format!(
                        "declare module \"api-summary\" {{\nimport type {{ {} }} from \"alga-storage-web\";\n{body}}}\n",
                        imports.join(", ")
                    )
                }
                _ => continue,
            };
            std::fs::write(file, source).unwrap();
            written += 1;
        }
    }
    assert!(
        written >= 4,
        "the docs have TypeScript snippets ({written} found)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tabs_editing_one_note_see_the_conflict() {
    let root = root();
    let example = root.join("examples/notes-iframe");
    let sizes = tokio::task::spawn_blocking({
        let root = root.clone();
        move || {
            run(
                "scripts/web-package.sh",
                as_from_a_shell(&mut Command::new("bash")).arg(root.join("scripts/web-package.sh")),
            )
        }
    })
    .await
    .unwrap();
    println!("{sizes}");
    // The tarball was just rebuilt under the same version: install it afresh, as a user would.
    let _ = std::fs::remove_dir_all(example.join("node_modules/alga-storage-web"));
    let _ = std::fs::remove_file(example.join("package-lock.json"));
    run(
        "npm install in examples/notes-iframe",
        Command::new("npm").current_dir(&example).args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]),
    );

    // The package's TypeScript declarations, as a strict TypeScript user meets them.
    run(
        "tsc --strict on examples/notes-iframe/typecheck.ts",
        Command::new("npx").current_dir(&example).args([
            "--no-install",
            "tsc",
            "-p",
            "tsconfig.json",
        ]),
    );

    // Every TypeScript snippet of the docs, as strictly.
    write_snippets(&root, &example.join("docs-snippets"));
    run(
        "tsc --strict on the TypeScript snippets of README.md, docs/ and sdk-web/README.md",
        Command::new("npx").current_dir(&example).args([
            "--no-install",
            "tsc",
            "-p",
            "tsconfig.snippets.json",
        ]),
    );

    // The walk-through on the app as plain ES modules, then on the bundle Vite builds from the
    // installed package (what most users ship).
    run(
        "vite build of examples/notes-iframe",
        Command::new("npx")
            .current_dir(&example)
            .args(["--no-install", "vite", "build"]),
    );
    let built = std::fs::read_dir(example.join("dist/assets"))
        .expect("vite wrote dist/assets")
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".wasm"));
    assert!(built, "the bundle carries the package's .wasm");
    let artifacts = root.join("target/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    for (app_dir, shot) in [
        ("app", "notes-conflict.png"),
        ("dist", "notes-conflict-vite.png"),
    ] {
        let (host_port, app_port) = (free_port(), free_port());
        let server = TestServer::start_with(|c| {
            c.cors_origins = vec![format!("http://127.0.0.1:{app_port}")];
        })
        .await;
        let _serve = Killed(
            Command::new("node")
                .current_dir(&example)
                .arg("serve.mjs")
                .env("STORAGE_URL", &server.base)
                .env("STORAGE_ADMIN_TOKEN", &server.admin_token)
                .env("STORAGE_TENANT", uuid::Uuid::new_v4().to_string())
                .env("HOST_PORT", host_port.to_string())
                .env("APP_PORT", app_port.to_string())
                .env("APP_DIR", app_dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("node serve.mjs"),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", app_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the example's servers did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let screenshot = artifacts.join(shot);
        let _ = std::fs::remove_file(&screenshot);
        let output = tokio::task::spawn_blocking({
            let example = example.clone();
            let screenshot = screenshot.clone();
            move || {
                run(
                    "the Playwright walk-through (e2e.mjs)",
                    Command::new("node")
                        .current_dir(example)
                        .arg("e2e.mjs")
                        .env("HOST_URL", format!("http://127.0.0.1:{host_port}"))
                        .env("SCREENSHOT", screenshot),
                )
            }
        })
        .await
        .unwrap();
        println!("{app_dir}: {output}");
        assert!(output.contains("notes example: ok"), "{app_dir}: {output}");
        let png = std::fs::read(&screenshot).expect("the conflict screenshot was saved");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "a real screenshot"
        );
    }
}
