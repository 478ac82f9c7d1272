/**
 * Largest decompressed archive the CLI verifies or inspects (bytes). Reading streams, so
 * this is not a memory bound: it is the guard against a gzip bomb (a small file that
 * unpacks without end), set far above any real cluster's state.
 */
export const snapshotArchiveBytesMax = 64 * 1024 * 1024 * 1024;

/**
 * Distinct key prefixes `snapshot inspect --kvdetails` tallies; prefixes first seen after
 * this many are counted together as `(other)`, so the tallies stay bounded whatever the keys.
 */
export const inspectPrefixesMax = 10_000;
