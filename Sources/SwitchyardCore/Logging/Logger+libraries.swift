import Logging

extension Logger {
    /// This logger as handed to a library that dumps wire data at `trace`: never below `debug`.
    ///
    /// AsyncHTTPClient logs every response part it reads at trace (a body part prints as a hex dump
    /// of its bytes, i.e. the completion), and PostgresNIO logs every backend message and connection
    /// action (rows, authentication). Switchyard promises that no log level writes content or keys,
    /// so these libraries get at most debug, where they log connection events only.
    public var heldAtDebug: Logger {
        guard logLevel < .debug else { return self }
        var logger = self
        logger.logLevel = .debug
        return logger
    }
}
