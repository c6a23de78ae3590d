# Recsys node image: one `recsys serve` process (front end, embedding silo or both, by RECSYS_ROLE).
# Built and run by cluster-config/docker-compose.yml; not exercised on the development machine
# (no Docker there): configuration for a user to apply.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props Recsys.sln ./
COPY src/ src/
RUN dotnet publish src/Recsys/Recsys.csproj -c Release -o /app --nologo

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app ./
# Container defaults; every option also reads RECSYS_<OPTION> (see `recsys serve --help`).
# Kestrel must listen on all interfaces inside a container; silo and gateway listen on the
# advertised address (the container's own name, resolved at start).
ENV RECSYS_MODELS=/models \
    RECSYS_DATA=/data \
    RECSYS_LISTEN=0.0.0.0 \
    RECSYS_PORT=8080 \
    RECSYS_SILO_PORT=11111 \
    RECSYS_GATEWAY_PORT=30000 \
    DOTNET_gcServer=1
EXPOSE 8080 11111 30000
VOLUME ["/models", "/data"]
ENTRYPOINT ["dotnet", "/app/recsys.dll", "serve"]
