import HTTPTypes
import Hummingbird
import NIOCore
import SwitchyardCore

/// The one place where the gateway's errors become HTTP responses, always OpenAI's error object.
extension GatewayError: HTTPResponseError {
    public var status: HTTPResponse.Status { .init(code: httpStatus) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields.add(headers)
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension HTTPFields {
    /// Sets each `(name, value)`; a name that is not a valid field name is skipped.
    mutating func add(_ headers: [(name: String, value: String)]) {
        for header in headers {
            if let name = HTTPField.Name(header.name) { self[name] = header.value }
        }
    }
}

/// Turns whatever a handler or Hummingbird itself throws into a `GatewayError`, so that even a
/// wrong URL or an oversized body is answered in OpenAI's shape.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as GatewayError {
            throw error
        } catch let error as any HTTPResponseError {
            switch error.status {
            case .notFound: throw GatewayError.unknownURL(request)
            case .methodNotAllowed: throw GatewayError.methodNotAllowed(request.method.rawValue, request.maskedPath)
            case .contentTooLarge: throw GatewayError.bodyTooLarge(limit: context.maxUploadSize)
            default:
                throw GatewayError(
                    status: Int(error.status.code), message: error.status.reasonPhrase, type: "invalid_request_error")
            }
        } catch BillingStoreError.unavailable {
            throw GatewayError.databaseUnavailable("answer this request")
        } catch is CancellationError {
            throw GatewayError(status: 499, message: "The client closed the request.", type: "invalid_request_error")
        } catch {
            context.logger.error("unhandled error", metadata: ["error.type": "\(type(of: error))"])
            throw GatewayError.internalError
        }
    }
}

extension GatewayError {
    /// 404 for a URL nothing serves, echoing the path with its keys masked.
    static func unknownURL(_ request: Request) -> GatewayError {
        .notFound(request.maskedPath)
    }
}

extension Request {
    /// The path with its keys masked: `/llm_api/{openid}/…` carries one.
    var maskedPath: String { LogSafe.target(path: uri.path, query: nil) }
}
