/**
 * msgpack options shared by every place that packs or unpacks (the bus, the control socket, the
 * store, the WebSocket wire and the browser): plain maps, typed arrays kept as extensions.
 * One definition, so a record written by one layer always reads back in another.
 */
export const packrOptions = { useRecords: false, moreTypes: true } as const;
