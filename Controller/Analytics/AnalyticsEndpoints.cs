using System.Globalization;
using System.Text;
using Hive.Controller.Api;
using Hive.Controller.Hosting;

namespace Hive.Controller.Analytics;

/// <summary><c>GET /api/v1/analytics?range=SECONDS</c>: stored samples (all history by default) and the sampling interval.</summary>
internal static class AnalyticsEndpoints
{
    public static void MapAnalyticsEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/analytics", (HttpContext http, AnalyticsStore analytics, ControllerOptions options, TimeProvider time) =>
        {
            long since = 0;
            if (http.Request.Query["range"].ToString() is { Length: > 0 } range)
            {
                since = long.TryParse(range, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds is > 0 and <= 10L * 365 * 86400
                    ? time.GetUtcNow().ToUnixTimeSeconds() - seconds
                    : throw ApiException.BadRequest("'range' must be a positive number of seconds");
            }

            // Samples are stored as the JSON they are served as: splice them into the envelope.
            var body = new StringBuilder("{\"samples\":[");
            body.AppendJoin(',', analytics.Since(since));
            body.Append("],\"interval_secs\":").Append(Math.Max(1, (long)Math.Round(options.AnalyticsInterval.TotalSeconds)).ToString(CultureInfo.InvariantCulture)).Append('}');
            return Results.Text(body.ToString(), "application/json; charset=utf-8");
        });
    }
}
