import { render } from 'preact';
import { App } from './app.tsx';
import { startSession } from './session.ts';
import './styles.css';

void startSession();
render(<App />, document.getElementById('app')!);
