export { createReceiverService, RECEIVER_SERVICE, type ReceiverOverrides, type ReceiverService } from './service.js';
export { Receiver } from './receiver.js';
export { receiverSettingsSchema, type ReceiverSettings } from './settings.js';
