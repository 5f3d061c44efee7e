import { render } from 'preact';
import './style.css';
import { App } from './views/app.js';
import { socket } from './session.js';

render(<App />, document.getElementById('app')!);
socket.connect();
