import java.io.FileInputStream;
import java.net.URI;
import java.security.cert.*;
import java.util.*;

/**
 * Asks Java's own PKIX revocation checker about one certificate, the way a Java TLS
 * client would. Arguments: root.pem issuer.pem leaf.pem responderURL.
 * Prints GOOD, REVOKED <reason> <epoch seconds>, or ERROR <message>.
 */
public class OcspCheck {
    public static void main(String[] args) throws Exception {
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        X509Certificate root = read(factory, args[0]);
        X509Certificate issuer = read(factory, args[1]);
        X509Certificate leaf = read(factory, args[2]);
        CertPath path = factory.generateCertPath(List.of(leaf, issuer));
        PKIXParameters parameters = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
        CertPathValidator validator = CertPathValidator.getInstance("PKIX");
        PKIXRevocationChecker checker = (PKIXRevocationChecker) validator.getRevocationChecker();
        checker.setOcspResponder(new URI(args[3]));
        checker.setOptions(EnumSet.of(
            PKIXRevocationChecker.Option.ONLY_END_ENTITY,
            PKIXRevocationChecker.Option.NO_FALLBACK));
        parameters.addCertPathChecker(checker);
        parameters.setRevocationEnabled(false);
        try {
            validator.validate(path, parameters);
            System.out.println("GOOD");
        } catch (CertPathValidatorException e) {
            Throwable cause = e.getCause();
            if (cause instanceof CertificateRevokedException revoked) {
                System.out.println("REVOKED " + revoked.getRevocationReason() + " "
                    + revoked.getRevocationDate().getTime() / 1000);
            } else {
                System.out.println("ERROR " + e.getMessage());
            }
        }
    }

    private static X509Certificate read(CertificateFactory factory, String file) throws Exception {
        try (FileInputStream in = new FileInputStream(file)) {
            return (X509Certificate) factory.generateCertificate(in);
        }
    }
}
