using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace Hive.Controller.Api.Access;

/// <summary>Endpoint metadata: this endpoint takes its body as raw bytes of any type (file uploads, stdin, ingress).</summary>
internal sealed class RawBodyMetadata
{
    public static readonly RawBodyMetadata Instance = new();
}

/// <summary>
/// Every body the API receives is JSON (<c>application/json</c>, UTF-8) unless its endpoint says
/// <see cref="AcceptsRawBody{TBuilder}"/>; anything else is 415. A browser can send
/// <c>text/plain</c>, <c>application/x-www-form-urlencoded</c> and <c>multipart/form-data</c>
/// cross-site without a preflight — never JSON — so this holds even where the Origin check cannot
/// see a browser. Enforced for every endpoint, including ones added later.
/// </summary>
internal static class JsonBodies
{
    public static TBuilder AcceptsRawBody<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(RawBodyMetadata.Instance);

    /// <summary>After routing and authorization: unauthenticated callers get their 401 first.</summary>
    public static IApplicationBuilder UseJsonBodies(this IApplicationBuilder app) => app.Use((http, next) =>
    {
        if (http.GetEndpoint() is not { } endpoint || endpoint.Metadata.GetMetadata<RawBodyMetadata>() is not null)
        {
            return next(http);
        }

        var type = http.Request.ContentType;
        var hasBody = http.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? (http.Request.ContentLength > 0);
        if (type is null ? !hasBody : IsJson(type))
        {
            return next(http);
        }

        return ErrorHandling.WriteErrorAsync(http, StatusCodes.Status415UnsupportedMediaType, type is null
            ? "request body without a Content-Type: send it as 'Content-Type: application/json'"
            : $"Content-Type '{type}' is not accepted here: send the body as 'Content-Type: application/json' (UTF-8)");
    });

    private static bool IsJson(string type) =>
        MediaTypeHeaderValue.TryParse(type, out var parsed)
        && parsed.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
        && (!parsed.Charset.HasValue || parsed.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));
}
