/// Why a document is not TOML 1.0: what was wrong and where.
public struct TOMLError: Error, Equatable, Sendable, CustomStringConvertible {
    public let position: TOMLPosition
    public let message: String

    public init(_ message: String, at position: TOMLPosition) {
        self.message = message
        self.position = position
    }

    public var description: String { "\(message) (line \(position.line), column \(position.column))" }
}
