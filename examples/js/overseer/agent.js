// Colony persistent overseer in JavaScript: keeps state across turns.
let turns = 0;
const history = [];

export function run(_context) {
  return JSON.stringify({ ready: true, language: 'javascript' });
}

export function onMessage(message) {
  turns += 1;
  const previous = history.length ? history[history.length - 1] : null;
  history.push(message);
  return JSON.stringify({ turn: turns, heard: message, previous, language: 'javascript' });
}
