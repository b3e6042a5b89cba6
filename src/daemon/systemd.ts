/**
 * The systemd user unit for `covd serve`. Type=exec with a readiness line in the log
 * ({"msg":"covd ready"}); journald keeps the JSON lines. Sandboxing is what a user unit can
 * apply without privileges and without breaking the daemon's needs: it must read executables
 * and sources anywhere in $HOME (debug info names them), write only its state directory and
 * the runtime directory where agents put coverage files and the control socket.
 */
export interface UnitOptions {
  /** Absolute path of the covd launcher (bin/covd). */
  covd: string;
  /** Absolute path of node. */
  node: string;
  /** Extra `covd serve` arguments. */
  args: string[];
}

/**
 * glibc's allocator settings the unit runs the daemon with: buffers of 128 KiB and more are
 * mmapped and returned when freed. Its adaptive threshold otherwise rises to the largest freed
 * buffer (up to 32 MiB), and a 1M-PC index's transient buffers stay resident after they are
 * freed (bench/NOTES-load.md, Memory). The memory benchmark runs the daemon with them too.
 */
export const ALLOCATOR_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' } as const;

function quote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/(["\\$])/g, '\\$1')}"`;
}

export function systemdUnit(o: UnitOptions): string {
  const exec = [o.node, o.covd, 'serve', ...o.args].map(quote).join(' ');
  return `# covd: live fuzzing-coverage daemon (systemd user unit)
# Install:  covd systemd-unit > ~/.config/systemd/user/covd.service
#           systemctl --user daemon-reload && systemctl --user enable --now covd
# Logs:     journalctl --user -u covd -f      Reload config:  systemctl --user reload covd
[Unit]
Description=covd live fuzzing-coverage daemon
After=default.target

[Service]
Type=exec
ExecStart=${exec}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
TimeoutStopSec=10s
KillSignal=SIGTERM
# Agents write under $XDG_RUNTIME_DIR/covd; the daemon's control socket lives there too.
Environment=COVD_LOG_LEVEL=info
# glibc: buffers of 128 KiB and more mmapped and returned when freed (its adaptive threshold
# otherwise keeps a 1M-PC index's freed encodings resident; bench/NOTES-load.md, Memory).
${Object.entries(ALLOCATOR_ENV).map(([k, v]) => `Environment=${k}=${v}`).join('\n')}
StateDirectory=covd
# Sandboxing that works in a user unit.
NoNewPrivileges=yes
PrivateTmp=no
ProtectSystem=strict
ReadWritePaths=%t %S
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=no
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
UMask=0077

[Install]
WantedBy=default.target
`;
}
