import pino from "pino";

/**
 * Structured JSON logs. Secrets never reach a log line: the fields that could carry one are
 * censored wherever they appear, and nothing logs request bodies.
 */
export function createLogger(opts: { level?: string; destination?: number | string } = {}): pino.Logger {
  return pino(
    {
      level: opts.level ?? process.env.ESTCA_LOG_LEVEL ?? "info",
      base: { svc: "estca" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ["password", "pin", "soPin", "*.password", "*.pin", "*.authorization", "headers.authorization", "req.headers.authorization", "req.headers.cookie", "privateKey", "*.privateKey"],
        censor: "[redacted]",
      },
    },
    pino.destination({ dest: opts.destination ?? 1, sync: false }),
  );
}

export type Logger = pino.Logger;
