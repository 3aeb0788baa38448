//! Shard options, shard assignment and the split of the decrement limit.

use crate::storage::options::fnv1a_32;
use crate::storage::{shard_of_execution, split_limit, ConvexStorageOptions, StorageError};

fn options(total_shards: u32, shards: Option<Vec<u32>>) -> ConvexStorageOptions {
    ConvexStorageOptions {
        total_shards,
        shards,
        enable_test_mode: false,
        max_items_per_call: None,
    }
}

fn invalid_message(options: &ConvexStorageOptions) -> String {
    match options.validate() {
        Err(StorageError::InvalidOptions(message)) => message,
        other => panic!("expected InvalidOptions, got {other:?}"),
    }
}

#[test]
fn defaults_are_one_shard_all_owned_and_no_test_mode() {
    let validated = ConvexStorageOptions::default().validate().unwrap();
    assert_eq!(validated.total_shards, 1);
    assert_eq!(validated.shards, vec![0]);
    assert!(!validated.enable_test_mode);
}

#[test]
fn total_shards_must_be_between_1_and_64() {
    assert_eq!(
        invalid_message(&options(0, None)),
        "totalShards must be in 1..=64, got 0"
    );
    assert_eq!(
        invalid_message(&options(65, None)),
        "totalShards must be in 1..=64, got 65"
    );
    let all = options(64, None).validate().unwrap();
    assert_eq!(all.shards, (0..64).collect::<Vec<_>>());
}

#[test]
fn owned_shards_must_be_a_non_empty_subset() {
    assert_eq!(
        invalid_message(&options(4, Some(vec![]))),
        "shards must not be empty"
    );
    assert_eq!(
        invalid_message(&options(4, Some(vec![1, 5]))),
        "shard 5 is not in [0, 4)"
    );
    assert_eq!(
        invalid_message(&options(4, Some(vec![4]))),
        "shard 4 is not in [0, 4)"
    );
    let error = options(4, Some(vec![])).validate().unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid storage options: shards must not be empty"
    );
}

#[test]
fn owned_shards_are_sorted_and_deduplicated() {
    let validated = options(8, Some(vec![5, 1, 5, 0, 1])).validate().unwrap();
    assert_eq!(validated.shards, vec![0, 1, 5]);
}

#[test]
fn shard_assignment_is_fnv1a_in_range_and_stable() {
    // FNV-1a 32-bit reference vectors: "" = 0x811c9dc5, "a" = 0xe40c292c, "foobar" = 0xbf9cf968.
    assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
    assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
    assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    assert_eq!(shard_of_execution("foobar", 7), 0xbf9c_f968 % 7);
    for total in [1, 2, 3, 7, 64] {
        let mut used = vec![false; total as usize];
        for i in 0..2_000 {
            let id = format!("te_{i:08}");
            let shard = shard_of_execution(&id, total);
            assert!(shard < total, "{id} -> {shard} of {total}");
            assert_eq!(shard, shard_of_execution(&id, total), "stable");
            used[shard as usize] = true;
        }
        assert!(used.iter().all(|&u| u), "every shard of {total} is used");
    }
    assert_eq!(
        shard_of_execution("x", 0),
        0,
        "0 shards cannot divide by zero"
    );
}

#[test]
fn decrement_limit_is_split_rounding_up() {
    assert_eq!(split_limit(10, 3), 4);
    assert_eq!(split_limit(10, 1), 10);
    assert_eq!(split_limit(9, 3), 3);
    assert_eq!(split_limit(1, 4), 1);
    assert_eq!(split_limit(0, 4), 0);
    assert_eq!(split_limit(10, 0), 10);
}

#[test]
fn max_items_per_call_must_be_at_least_1() {
    let zero = ConvexStorageOptions {
        max_items_per_call: Some(0),
        ..ConvexStorageOptions::default()
    };
    assert_eq!(
        invalid_message(&zero),
        "maxItemsPerCall must be at least 1, got 0"
    );
    let one = ConvexStorageOptions {
        max_items_per_call: Some(1),
        ..ConvexStorageOptions::default()
    };
    assert_eq!(one.validate().unwrap().max_items_per_call, Some(1));
}
