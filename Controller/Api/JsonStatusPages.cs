namespace Hive.Controller.Api;

/// <summary>Routing's bare 404/405 become the API's JSON error shape too.</summary>
internal static class JsonStatusPages
{
    public static IApplicationBuilder UseJsonStatusPages(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        await next(http);
        if (http.Response.HasStarted || http.Response.ContentLength is > 0 || http.Response.ContentType is not null)
        {
            return;
        }

        switch (http.Response.StatusCode)
        {
            case StatusCodes.Status404NotFound:
                await ErrorHandling.WriteErrorAsync(http, StatusCodes.Status404NotFound, $"no such endpoint: {http.Request.Method} {http.Request.Path}");
                break;
            case StatusCodes.Status405MethodNotAllowed:
                await ErrorHandling.WriteErrorAsync(http, StatusCodes.Status405MethodNotAllowed, $"method {http.Request.Method} not allowed on {http.Request.Path}");
                break;
        }
    });
}
