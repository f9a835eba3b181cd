//! A small mutation fuzzer that runs on the stable toolchain: no sanitizer,
//! no nightly, no coverage instrumentation. It mutates a seed corpus
//! (bit flips, byte edits, splices, dictionary tokens) for a fixed time,
//! runs each input under `catch_unwind`, and keeps inputs whose *outcome
//! signature* (e.g. which error a parser reports) is new — a coarse stand-in
//! for coverage that steers it into new parser states. A panic is a crash:
//! the input is saved under `fuzz/artifacts/TARGET/` and the run exits 1.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One fuzz target: runs an input (panicking on a bug) and returns a short
/// signature of what happened.
pub type Target = fn(&[u8]) -> String;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dict: &[&str]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                if let Some(b) = out.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out.remove(i);
            }
            2 => out.insert(at, rng.next() as u8),
            3 | 4 if !dict.is_empty() => {
                let word = dict.get(rng.below(dict.len())).copied().unwrap_or("");
                out.splice(at..at, word.bytes());
            }
            5 if !corpus.is_empty() => {
                let other = corpus.get(rng.below(corpus.len())).cloned().unwrap_or_default();
                let from = rng.below(other.len() + 1);
                let to = from + rng.below(other.len() - from + 1);
                let cut = rng.below(out.len() + 1);
                out.truncate(cut);
                out.extend_from_slice(other.get(from..to).unwrap_or_default());
            }
            _ if out.len() > 1 => {
                // Duplicate a chunk: grows nesting and lists.
                let from = rng.below(out.len());
                let to = (from + 1 + rng.below(16)).min(out.len());
                let chunk = out.get(from..to).unwrap_or_default().to_vec();
                out.splice(at.min(out.len())..at.min(out.len()), chunk);
            }
            _ => out.push(rng.next() as u8),
        }
    }
    out.truncate(16 * 1024);
    out
}

fn load_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect())
        .unwrap_or_default();
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    seeds
}

fn save_crash(name: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts").join(name);
    let _ = std::fs::create_dir_all(&dir);
    let id = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("crash-{id:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

/// Fuzz `target` for `seconds`; returns the process exit code (0 clean,
/// 1 crash). `FUZZ_SEED` fixes the random seed.
pub fn run(name: &str, target: Target, dict: &[&str], seconds: u64) -> i32 {
    let seeds_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(name);
    let mut corpus = load_seeds(&seeds_dir);
    let seed = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let mut rng = Rng(seed | 1);
    panic::set_hook(Box::new(|_| {}));
    let mut seen: HashSet<String> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut execs: u64 = 0;
    let mut check = |input: &[u8], corpus: &mut Vec<Vec<u8>>| -> Result<(), ()> {
        match panic::catch_unwind(AssertUnwindSafe(|| target(input))) {
            Ok(sig) => {
                if seen.insert(sig) {
                    corpus.push(input.to_vec());
                }
                Ok(())
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                let path = save_crash(name, input);
                eprintln!("fuzz {name}: CRASH (panic: {msg}); input saved to {}", path.display());
                Err(())
            }
        }
    };
    for s in corpus.clone() {
        if check(&s, &mut corpus).is_err() {
            return 1;
        }
    }
    while Instant::now() < deadline {
        for _ in 0..256 {
            let base = corpus.get(rng.below(corpus.len())).cloned().unwrap_or_default();
            let input = mutate(&mut rng, &base, &corpus, dict);
            execs += 1;
            if check(&input, &mut corpus).is_err() {
                return 1;
            }
        }
    }
    eprintln!(
        "fuzz {name}: {execs} runs in {seconds} s, {} signatures, corpus {} (seed {seed}): no crash",
        seen.len(),
        corpus.len()
    );
    0
}

/// `SECONDS` from the first argument (default 10).
pub fn seconds_arg() -> u64 {
    std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10)
}
