//! Linearizability of strong operations on a three-region cluster of real processes under
//! faults: six clients (two per node, each talking to its node only, so followers forward)
//! read, write and compare-and-set a few keys while the nemesis SIGKILLs the leader,
//! restarts it, and cuts the new leader's region off and heals it. The recorded history is
//! checked with the Wing–Gong/Lowe checker in `edgekv_tests::linearizability`, which has
//! its own tests on known-bad histories.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use edgekv_client::{Client, Value, key};
use edgekv_tests::cluster::Cluster;
use edgekv_tests::linearizability::{self as lin, Op, Outcome, Recorder};

const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-northeast"];
const KEYS: u64 = 3;
const CLIENTS: usize = 6;

/// A small deterministic generator, so a failing run can be replayed by its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn number(value: Option<Value>) -> Option<u64> {
    match value {
        Some(Value::U64(n)) => Some(n),
        Some(other) => panic!("unexpected value {other:?}"),
        None => None,
    }
}

/// What a failed write tells the history: indefinite errors may have taken effect; every
/// other error is a refusal before anything was proposed.
fn write_failure(error: &edgekv_client::Error) -> Outcome {
    if error.is_indefinite() {
        Outcome::Unknown
    } else {
        Outcome::Failed
    }
}

async fn run_client(id: usize, client: Client, recorder: Arc<Recorder>, stop: Arc<AtomicBool>) -> usize {
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1));
    let mut sequence = 0u64;
    let mut operations = 0;
    while !stop.load(Ordering::SeqCst) {
        let k = random.next() % KEYS;
        let name = format!("r{k}");
        sequence += 1;
        // Unique values, so a value identifies the write (and the versionstamp) it came from.
        let unique = (id as u64 + 1) * 1_000_000 + sequence;
        match random.next() % 3 {
            0 => {
                let ticket = recorder.invoke(id, &name, Op::Read);
                let outcome = match client.get(key!["lin", k]).await {
                    Ok(entry) => Outcome::Read(number(entry.and_then(|e| e.value))),
                    Err(_) => Outcome::Unknown,
                };
                recorder.complete(ticket, outcome);
            }
            1 => {
                let ticket = recorder.invoke(id, &name, Op::Write(unique));
                let outcome = match client.set(key!["lin", k], unique).await {
                    Ok(_) => Outcome::Written,
                    Err(error) => write_failure(&error),
                };
                recorder.complete(ticket, outcome);
            }
            _ => {
                // Compare-and-set: read the current value and its versionstamp, then write
                // only if the versionstamp still holds. Values are unique, so "versionstamp
                // unchanged" is "value unchanged", the register CAS the checker models.
                let ticket = recorder.invoke(id, &name, Op::Read);
                let current = match client.get(key!["lin", k]).await {
                    Ok(entry) => entry,
                    Err(_) => {
                        recorder.complete(ticket, Outcome::Unknown);
                        operations += 1;
                        continue;
                    }
                };
                let expected = current.as_ref().and_then(|e| number(e.value.clone()));
                recorder.complete(ticket, Outcome::Read(expected));
                let stamp = current.map(|e| e.versionstamp);
                let ticket = recorder.invoke(id, &name, Op::Cas { expected, new: unique });
                let outcome = match client
                    .atomic()
                    .check(key!["lin", k], stamp)
                    .set(key!["lin", k], unique)
                    .commit()
                    .await
                {
                    Ok(result) if result.ok => Outcome::CasOk,
                    Ok(_) => Outcome::CasFailed,
                    Err(error) => write_failure(&error),
                };
                recorder.complete(ticket, outcome);
            }
        }
        operations += 1;
    }
    operations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strong_operations_are_linearizable_under_leader_kills_and_partitions() {
    let mut cluster = Cluster::start(&REGIONS, &[]).unwrap();
    let first_leader = cluster.wait_for_leader(&[], Duration::from_secs(30)).await.unwrap();
    let recorder = Arc::new(Recorder::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for id in 0..CLIENTS {
        let node = &cluster.nodes[id % cluster.nodes.len()];
        let client = node.client().await.unwrap();
        clients.push(tokio::spawn(run_client(id, client, recorder.clone(), stop.clone())));
    }

    // The nemesis: kill the leader, bring it back, cut the new leader's region off, heal.
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.kill(first_leader);
    let second_leader = cluster
        .wait_for_leader(&[first_leader], Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(first_leader).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let region = cluster.node(second_leader).region.clone();
    let via = cluster.nodes.iter().find(|n| n.id != second_leader).unwrap().id;
    cluster.isolate(&region, via).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    cluster.heal(via).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let mut operations = 0;
    for client in clients {
        operations += client.await.unwrap();
    }

    let history = recorder.history();
    let definite = history
        .iter()
        .filter(|o| !matches!(o.outcome, Outcome::Unknown | Outcome::Failed))
        .count();
    assert!(
        definite > 100,
        "too few completed operations ({definite} of {operations}) for the check to mean anything"
    );
    match lin::check(&history) {
        Ok(report) => eprintln!("linearizable: {report:?} ({definite} definite operations)"),
        Err(error) => panic!("{error}"),
    }
}
