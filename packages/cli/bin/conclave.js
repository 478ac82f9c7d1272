#!/usr/bin/env node
// The installed `conclave` command: the built CLI (kept apart so the link npm makes is
// executable before the first build, and stays so across rebuilds).
import '../dist/conclave.js';
