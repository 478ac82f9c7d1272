/** Largest archive the CLI verifies or inspects (it reads the file whole to check its sums). */
export const snapshotFileBytesMax = 1024 * 1024 * 1024;
