// Readers of the log store's tail show the notice too, so its wording lives with the log store's contract.
export { trimNotice } from '@kiln/contracts';
