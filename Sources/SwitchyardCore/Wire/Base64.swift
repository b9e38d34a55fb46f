import Foundation

/// Base64 for data URLs and audio events (Foundation's, behind names the gateway reads well).
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    public static func decode(_ text: String) -> [UInt8]? {
        Data(base64Encoded: text, options: .ignoreUnknownCharacters).map { [UInt8]($0) }
    }

    /// `data:MEDIA;base64,…` for `bytes`.
    public static func dataURL(_ bytes: [UInt8], mediaType: String) -> String {
        "data:\(mediaType);base64," + encode(bytes)
    }
}
