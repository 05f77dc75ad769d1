package strom.compat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;

import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerTokenCallback;

/**
 * sec-oauth: a login callback handler that hands the client the token in the JAAS option
 * tokenFile exactly as written, without the client-side checks of Kafka's own
 * OAuthBearerLoginCallbackHandler (which refuses an unsigned "header.payload." token itself:
 * "Malformed JWT provided; expected three sections"), so that the broker is the one to judge it.
 * The lifetime given to the client is an hour ahead (the client's refresh schedule only).
 */
public class OAuthStaticToken implements AuthenticateCallbackHandler {
    private String token;

    @Override
    public void configure(Map<String, ?> configs, String saslMechanism, List<AppConfigurationEntry> jaas) {
        Object file = jaas.get(0).getOptions().get("tokenFile");
        try {
            token = new String(Files.readAllBytes(Path.of(String.valueOf(file))), StandardCharsets.UTF_8).trim();
        } catch (Exception e) {
            throw new IllegalArgumentException("tokenFile " + file + ": " + e);
        }
    }

    @Override
    public void handle(Callback[] callbacks) throws UnsupportedCallbackException {
        for (Callback c : callbacks) {
            if (!(c instanceof OAuthBearerTokenCallback)) throw new UnsupportedCallbackException(c);
            final long now = System.currentTimeMillis();
            ((OAuthBearerTokenCallback) c).token(new OAuthBearerToken() {
                public String value() { return token; }
                public Set<String> scope() { return Set.of(); }
                public long lifetimeMs() { return now + 3600_000L; }
                public String principalName() { return "alice"; }
                public Long startTimeMs() { return now; }
            });
        }
    }

    @Override
    public void close() {}
}
