/**
 * The reader as `covd symbolize` uses it, in one module. `npm run build` replaces this file's
 * compiled form with a bundle of the reader (scripts/build-cli.ts), so a cold command line
 * loads one module instead of about twenty-five (the ES-module loader costs per module). Other
 * importers (the pool's threads, the daemon) import the reader's modules themselves.
 */
export { DebugInfo, filePath, type InlineFrames, type ResolvedIndex } from './resolve.js';
export { demanglerActive, isItaniumName, setDemanglingEnabled } from './demangle.js';
