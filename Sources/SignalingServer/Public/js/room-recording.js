// The room page's recording controls: the "Recording" badge and the record button, and the panel that lists
// and plays this room's recordings. The button shows while a member that can record the room is present (a
// vcall-gateway started with --record, or a recording worker's) and asks it through the protocol; with no such
// member, on a server with recording workers (PostgreSQL), it asks the server for a recording job instead.
import { notify } from './common.js';
import { showRecordings } from './recordings.js';

const $ = (id) => document.getElementById(id);

/** GET/POST/DELETE the room's recording job; resolves to the JSON answer, or throws with the server's message. */
async function recordingJob(roomId, method) {
  const response = await fetch(`/api/rooms/${encodeURIComponent(roomId)}/recording`, {
    method,
    headers: method === 'POST' ? { 'Content-Type': 'application/json' } : {},
    body: method === 'POST' ? JSON.stringify({ composite: true }) : undefined,
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error?.message || `the server answered ${response.status}`);
  return body;
}

/**
 * Installs the controls. `send(msg)` sends a signaling message. Returns the handlers room.js calls:
 * onRecordingState(msg) for `recording-state`, forget(id) when a member leaves, keepOnly(ids) on (re)joining,
 * signedIn() when room-joined says this page is logged in (only accounts may ask the recording workers).
 */
export function installRoomRecording({ roomId, send }) {
  const recorders = new Map(); // member id → recording (bool): members that can record the room
  const button = $('toggle-recording');
  const badge = $('recording-badge');
  const panel = $('recordings-panel');
  const opener = $('show-recordings');
  let pending = null; // the action asked for and not yet confirmed by recording-state
  let workers = false; // the server has recording workers, and this account may ask them
  let waitingJob = null; // a job that no worker has taken yet: {id, message}

  function render() {
    const recording = [...recorders.values()].some(Boolean);
    badge.hidden = !recording;
    button.hidden = recorders.size === 0 && !workers;
    button.setAttribute('aria-pressed', String(recording));
    button.classList.toggle('danger', recording);
    button.querySelector('.control-label').textContent = pending ? (pending === 'start' ? 'Starting…' : 'Stopping…')
      : waitingJob ? 'Waiting for a recorder (cancel)' : (recording ? 'Stop recording' : 'Record');
    button.title = waitingJob ? waitingJob.message : '';
    button.disabled = pending !== null;
  }

  /** Asks the server's workers: a job starts (or waits for a free worker), or the waiting job is cancelled. */
  async function askWorkers() {
    pending = waitingJob ? 'stop' : 'start';
    render();
    try {
      if (waitingJob) {
        await recordingJob(roomId, 'DELETE');
        waitingJob = null;
        notify('Recording request cancelled.', 'info', 4000);
      } else {
        const answer = await recordingJob(roomId, 'POST');
        if (answer.job?.state === 'waiting') {
          waitingJob = { id: answer.job.id, message: answer.message };
          notify(`Recording requested: ${answer.message}`, 'info', 8000);
          watchWaitingJob();
        }
        // A job a worker took already: its recorder joins the room and says so (recording-state).
      }
    } catch (error) {
      notify(`Recording: ${error.message}`, 'error');
    }
    pending = null;
    render();
  }

  /** Follows a waiting job until a worker takes it (its recorder then joins) or it ends. */
  async function watchWaitingJob() {
    while (waitingJob) {
      await new Promise((resolve) => setTimeout(resolve, 3000));
      if (!waitingJob) return;
      try {
        const { job, message } = await recordingJob(roomId, 'GET');
        if (!job || job.id !== waitingJob.id || job.state !== 'waiting') {
          if (job?.state === 'failed') notify(`Recording ${message}`, 'error');
          waitingJob = null;
        } else {
          waitingJob.message = message;
        }
        render();
      } catch { /* the next look may work */ }
    }
  }

  button.addEventListener('click', () => {
    if (recorders.size === 0) {
      if (workers) askWorkers();
      return;
    }
    pending = [...recorders.values()].some(Boolean) ? 'stop' : 'start';
    // Every recorder hears it: after a takeover the room may still hold the first worker's recorder for a while.
    for (const recorder of recorders.keys()) send({ type: 'recording-request', to: recorder, action: pending });
    render();
    // No answer within 10 s: the gateway did not act (say it has no recording folder).
    const asked = pending;
    setTimeout(() => {
      if (pending !== asked) return;
      pending = null;
      render();
      notify('The recorder did not respond. Try again, or check the gateway.', 'error');
    }, 10000);
  });

  async function refresh() {
    window.vcallRecordings = await showRecordings($('recording-list'), $('recording-player'), { room: roomId });
  }
  opener.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    opener.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden) refresh();
    else $('recording-player').pause();
  });
  $('close-recordings').addEventListener('click', () => opener.click());

  function onRecordingState(msg) {
    if (!msg.from || typeof msg.recording !== 'boolean') return;
    const was = [...recorders.values()].some(Boolean);
    recorders.set(msg.from, msg.recording);
    pending = null;
    if (msg.recording) waitingJob = null;
    const now = [...recorders.values()].some(Boolean);
    if (now !== was) notify(now ? 'This call is being recorded.' : 'Recording stopped.', 'info', 4000);
    render();
    if (!panel.hidden) refresh();
  }

  function forget(id) {
    if (recorders.delete(id)) render();
  }

  function keepOnly(ids) {
    for (const id of [...recorders.keys()]) if (!ids.has(id)) recorders.delete(id);
    render();
  }

  /** Logged in on a server with recording workers: the button works with nobody recording in the room. */
  let askedServer = false;
  function signedIn() {
    if (askedServer) return;
    askedServer = true;
    recordingJob(roomId, 'GET').then((answer) => {
      workers = Boolean(answer.enabled);
      if (answer.job?.state === 'waiting' && !waitingJob) {
        waitingJob = { id: answer.job.id, message: answer.message };
        watchWaitingJob();
      }
      render();
    }).catch(() => { askedServer = false; /* asked again on the next room-joined */ });
  }

  render();
  return { onRecordingState, forget, keepOnly, signedIn };
}
