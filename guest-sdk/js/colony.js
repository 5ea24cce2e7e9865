// Colony guest helpers for JavaScript (componentize-js): the host interfaces with JSON
// objects instead of JSON text, and short names. Import what you need:
//   import { report, emit, info, drain, wait, conversation } from '../../../guest-sdk/js/colony.js';
import { reportToParent } from 'colony:agent/report@0.2.0';
import { emit as emitRaw, log } from 'colony:agent/events@0.2.0';
import { drain as drainRaw, wait as waitRaw } from 'colony:agent/inbox@0.2.0';
import { read, append } from 'colony:agent/conversation@0.2.0';

/** Files the report for the parent: status 'success' | 'partial' | 'failed'. */
export function report(status, summary, data = {}) {
  reportToParent(status, summary, JSON.stringify(data));
}

/** Publishes a progress event of `type` with an object as data. */
export function emit(type, data = {}) {
  emitRaw(type, JSON.stringify(data));
}

/** Writes an info log line. */
export function info(message) {
  log('info', message);
}

/** Every injected message not yet delivered. */
export function drain() {
  return drainRaw();
}

/** The next injected message within `ms`, or undefined. */
export function wait(ms) {
  return waitRaw(ms);
}

/** Every part of the worker's conversation, read page by page. */
function readAll() {
  const parts = [];
  let start = 0n;
  while (start !== undefined) {
    const page = read(start, 0);
    parts.push(...page.parts);
    start = page.next;
  }
  return parts;
}

/** The worker's conversation: read() → parts; append(role, content) → seq. */
export const conversation = {
  read: readAll,
  append: (role, content) => append({ role, content }),
};

/** The run's input object from the context. */
export function input(context) {
  return JSON.parse(context.input || '{}');
}
