using ModelContextProtocol;

namespace Hive.Agent.Mcp;

/// <summary>Paths from tool calls: absolute, no NUL; failures become clear tool errors.</summary>
internal static class ToolPaths
{
    public static string Require(string? path, string parameter = "path")
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new McpException($"'{parameter}' is required");
        }

        if (!path.StartsWith('/'))
        {
            throw new McpException($"'{parameter}' must be an absolute path inside the sandbox (got '{path}')");
        }

        if (path.Contains('\0', StringComparison.Ordinal) || path.Length > 4096)
        {
            throw new McpException($"'{parameter}' is not a valid path");
        }

        var full = Path.GetFullPath(path);
        return full.Length > 1 ? full.TrimEnd('/') : full;
    }

    /// <summary>Runs a file operation; I/O failures become tool errors naming the path and the reason.</summary>
    public static T Guard<T>(string path, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw ToolError(path, ex);
        }
    }

    public static async Task<T> GuardAsync<T>(string path, Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw ToolError(path, ex);
        }
    }

    private static McpException ToolError(string path, Exception ex) => ex switch
    {
        UnauthorizedAccessException => new McpException($"permission denied: {path}"),
        FileNotFoundException => new McpException($"no such file: {path}"),
        DirectoryNotFoundException => new McpException($"no such file or directory: {path}"),
        PathTooLongException => new McpException($"path too long: {path}"),
        _ => new McpException($"{path}: {ex.Message}"),
    };

    /// <summary>1536 → "1.5 KB".</summary>
    public static string HumanSize(long bytes)
    {
        string[] units = ["B", "KB", "MB", "GB", "TB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0 ? $"{bytes} B" : $"{value.ToString(value < 10 ? "0.0" : "0", System.Globalization.CultureInfo.InvariantCulture)} {units[unit]}";
    }
}
