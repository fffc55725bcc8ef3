namespace Hive.Wire;

/// <summary>Writes the messages of a server-streaming response; each write is flushed.</summary>
public interface IServerStreamWriter<in T>
{
    ValueTask WriteAsync(T message, CancellationToken cancellationToken = default);
}
