//! The `command` provider: a local program reads the request as JSON on stdin and writes the
//! answer as JSON on stdout. A non-zero exit, a timeout or invalid JSON is a failure.

use std::process::Stdio;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{Answer, EnrichError, Enricher, Request, Usage};

/// What the program prints: the answer, optionally with what it cost.
#[derive(Deserialize)]
struct Printed {
    #[serde(flatten)]
    answer: Answer,
    #[serde(default)]
    usage: Option<PrintedUsage>,
}

#[derive(Deserialize)]
struct PrintedUsage {
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
}

pub(super) async fn enrich(
    enricher: &Enricher,
    request: &Request,
) -> (Result<Answer, EnrichError>, Usage) {
    match run(enricher, request).await {
        Ok(printed) => {
            let usage = printed.usage.map_or_else(Usage::default, |u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            });
            (Ok(printed.answer), usage)
        }
        Err(e) => (Err(e), Usage::default()),
    }
}

async fn run(enricher: &Enricher, request: &Request) -> Result<Printed, EnrichError> {
    let config = enricher.config();
    let Some((program, args)) = config.command.split_first() else {
        return Err(EnrichError::Failed(
            "no enrichment command is configured".to_owned(),
        ));
    };
    let input = serde_json::to_vec(request).map_err(|e| EnrichError::Failed(e.to_string()))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        // The program is the provider: it needs no key meant for the openai provider.
        .env_remove(&config.api_key_env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            EnrichError::Failed(format!(
                "cannot start the enrichment command {program}: {e}"
            ))
        })?;
    // Writing runs beside the wait, so a program that does not read its input (or fills its
    // output first) cannot block it; the timeout covers the whole exchange.
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let output = tokio::time::timeout(config.timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            EnrichError::Failed(format!(
                "the enrichment command {program} did not answer within {}",
                humantime::format_duration(config.timeout)
            ))
        })?
        .map_err(|e| {
            EnrichError::Failed(format!("the enrichment command {program} failed: {e}"))
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        return Err(EnrichError::Failed(format!(
            "the enrichment command {program} exited with {}: {first}",
            output.status
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        EnrichError::Invalid(format!("the command did not print the answer JSON: {e}"))
    })
}
