#!/usr/bin/env node
// Entry point of a Node child process started by a flowtide worker (runtime="node").
import { runChild } from './runtime.mjs';

await runChild();
