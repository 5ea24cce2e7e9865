// Colony ephemeral worker in JavaScript: reads its task, emits a progress event, reads
// its seeded conversation, takes injected messages and reports to its parent.
// Input: {"wait": true} to wait for one injected message, {"fail": true} to fail.
import { report, emit, info, drain, wait, conversation, input } from '../../../guest-sdk/js/colony.js';

export function run(context) {
  const params = input(context);
  emit('progress', { step: 'start', language: 'javascript' });
  const seeded = conversation.read().map((part) => part.content);
  const injected = [];
  if (params.wait) {
    const message = wait(30000);
    if (message !== undefined) injected.push(message);
  }
  injected.push(...drain());
  info(`javascript worker ${context.workerId} heard ${injected.length} messages`);
  if (params.fail) {
    throw `failing on purpose: ${context.task}`;
  }
  report('success', `javascript did: ${context.task}`, { language: 'javascript', seeded, injected });
  return JSON.stringify({ language: 'javascript', task: context.task });
}

export function onMessage(_message) {
  throw 'this worker takes no messages';
}
