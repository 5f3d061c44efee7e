import { fileURLToPath } from 'node:url';

/**
 * The built page (index.html + hashed assets under assets/), for the host to hand to the gateway.
 * `vite build` writes it beside the compiled entry, so the same path holds from src/ (tests) and dist/.
 */
export const webRoot: string = fileURLToPath(new URL('../dist/www/', import.meta.url));
