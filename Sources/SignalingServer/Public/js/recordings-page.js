// /recordings: every recording the signed-in account may see.
import { currentUser } from './common.js';
import { showRecordings } from './recordings.js';

const list = document.getElementById('recording-list');
const player = document.getElementById('player');
const who = document.getElementById('account-status');

async function start() {
  const user = await currentUser();
  who.textContent = user ? `Signed in as ${user}` : 'Not signed in';
  window.vcallRecordings = await showRecordings(list, player);
}

start();
