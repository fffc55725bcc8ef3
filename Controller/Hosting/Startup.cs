namespace Hive.Controller.Hosting;

/// <summary>Start-up messages an operator must see.</summary>
internal static partial class Startup
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Hive Controller listening on http://{Host}:{Port} (data dir {DataDir})")]
    public static partial void LogListening(ILogger logger, string host, int port, string dataDir);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "No API key configured (--api-key / HIVEBOX_API_KEY): the API is unauthenticated and listens on 127.0.0.1 only")]
    public static partial void LogNoApiKey(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "User namespaces are off (--userns off / HIVEBOX_USERNS): root in a new sandbox is root on the host")]
    public static partial void LogNoUserNamespaces(ILogger logger);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Sandbox \"{Sandbox}\" runs without a user namespace (root in it is root on the host); destroy and create it again to give it one")]
    public static partial void LogSandboxWithoutUserNamespace(ILogger logger, string sandbox);
}
