package dev.redlock.java;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.redlock.coroutines.DistributedLocks;
import dev.redlock.coroutines.Lease;
import dev.redlock.coroutines.Redlock;
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The facade's public surface, checked by reflection: it reads as plain Java, and it keeps up with
 * the engine (every public operation of the coroutine engine has a twin here).
 */
final class JavaApiTest {
  private static final String PACKAGE = "dev.redlock.java";

  /** Engine operation → the facade method(s) that expose it to Java. */
  private static final Map<String, List<String>> TWINS =
      Map.ofEntries(
          Map.entry("withRedlock", List.of("withLock", "withLockBlocking")),
          Map.entry("withLock", List.of("withLock", "withLockBlocking")),
          Map.entry("acquire", List.of("acquire")),
          Map.entry("tryAcquire", List.of("tryAcquire")),
          Map.entry("withReadLock", List.of("withReadLock")),
          Map.entry("acquireReadLock", List.of("acquireReadLock")),
          Map.entry("tryAcquireReadLock", List.of("tryAcquireReadLock")),
          Map.entry("withWriteLock", List.of("withWriteLock")),
          Map.entry("acquireWriteLock", List.of("acquireWriteLock")),
          Map.entry("tryAcquireWriteLock", List.of("tryAcquireWriteLock")),
          Map.entry("withPermit", List.of("withPermit")),
          Map.entry("acquirePermit", List.of("acquirePermit")),
          Map.entry("tryAcquirePermit", List.of("tryAcquirePermit")));

  /** Members of the handle and the lease → their facade twins. */
  private static final Map<String, List<String>> MEMBER_TWINS =
      Map.ofEntries(
          Map.entry("Redlock.getConfig", List.of("AsyncRedlock.config")),
          Map.entry("Redlock.close", List.of("AsyncRedlock.close")),
          Map.entry("Redlock.checkMasters", List.of("AsyncRedlock.checkMasters")),
          Map.entry("Redlock.<init>", List.of("AsyncRedlock.create", "AsyncRedlock.builder")),
          Map.entry("DistributedLocks", List.of("AsyncRedlock.create", "AsyncRedlock.builder")),
          Map.entry("Lease.getResources", List.of("LockLease.resources")),
          Map.entry("Lease.getFencingToken", List.of("LockLease.fencingToken")),
          Map.entry("Lease.isValid", List.of("LockLease.isValid")),
          Map.entry("Lease.getRemaining", List.of("LockLease.remaining")),
          Map.entry("Lease.getState", List.of("LockLease.state", "LockLease.onStateChange")),
          Map.entry("Lease.extend", List.of("LockLease.extend")),
          Map.entry("Lease.release", List.of("LockLease.release", "LockLease.close")),
          Map.entry("Lease.awaitLost", List.of("LockLease.lost")));

  /** Kotlin parameters that every call has in another form in Java: the lock's names and its work. */
  private static final Set<String> STRUCTURAL = Set.of("resources", "resource", "block");

  /** What Java's options offer beyond Kotlin's parameters: executors and switching renewal off. */
  private static final Set<String> JAVA_ONLY_OPTIONS = Set.of("autoRenew", "executor");

  @Test
  void publicTypes_areTheOnesDesigned() throws Exception {
    assertEquals(
        Set.of(
            "AsyncRedlock", "AsyncRedlock$Builder", "CriticalSection", "LockLease", "LockOptions",
            "LockOptions$Builder", "RedlockLock"),
        publicTypes().stream().map(c -> c.getName().substring(PACKAGE.length() + 1)).collect(Collectors.toSet()));
  }

  @Test
  void publicSignatures_mentionNoKotlinType() throws Exception {
    List<String> offending = new ArrayList<>();
    for (Class<?> type : publicTypes()) {
      if (Arrays.stream(type.getAnnotations()).anyMatch(a -> a.annotationType().getName().equals("kotlin.Metadata"))) {
        offending.add(type.getName() + " is compiled from Kotlin");
      }
      check(type.getName() + " extends", type.getGenericSuperclass(), offending);
      for (Type i : type.getGenericInterfaces()) {
        check(type.getName() + " implements", i, offending);
      }
      for (TypeVariable<?> v : type.getTypeParameters()) {
        check(type.getName() + "<" + v.getName() + ">", v, offending);
      }
      for (Method m : type.getDeclaredMethods()) {
        if (visible(m.getModifiers()) && !m.isSynthetic()) {
          checkExecutable(type.getName() + "." + m.getName(), m, offending);
          check(type.getName() + "." + m.getName() + " returns", m.getGenericReturnType(), offending);
        }
      }
      for (Constructor<?> c : type.getDeclaredConstructors()) {
        if (visible(c.getModifiers()) && !c.isSynthetic()) {
          checkExecutable(type.getName() + ".<init>", c, offending);
        }
      }
      for (Field f : type.getDeclaredFields()) {
        if (visible(f.getModifiers()) && !f.isSynthetic()) {
          check(type.getName() + "." + f.getName(), f.getGenericType(), offending);
        }
      }
    }
    assertEquals(List.of(), offending);
  }

  @Test
  void publicSignatures_checkIsAbleToSpotKotlinTypes() {
    List<String> offending = new ArrayList<>();
    for (Method m : Lease.class.getDeclaredMethods()) {
      checkExecutable("Lease." + m.getName(), m, offending);
      check("Lease." + m.getName() + " returns", m.getGenericReturnType(), offending);
    }
    assertFalse(offending.isEmpty(), "the check must notice the engine's Continuation parameters");
  }

  @Test
  void engineOperations_eachHaveAFacadeTwin_withTheSameParameters() {
    Map<String, Method> kotlin = engineOperations();
    assertEquals(new TreeSet<>(TWINS.keySet()), new TreeSet<>(kotlin.keySet()),
        "every public engine operation needs a twin in the facade (add it, then to TWINS)");
    Set<String> options = lockOptionSetters();
    List<String> problems = new ArrayList<>();
    for (Map.Entry<String, Method> op : kotlin.entrySet()) {
      List<String> kotlinParams = kotlinParameters(op.getValue());
      for (String twin : TWINS.get(op.getKey())) {
        List<Method> forms = Arrays.stream(AsyncRedlock.class.getMethods())
            .filter(m -> m.getName().equals(twin)).collect(Collectors.toList());
        // Every Java twin comes in two forms: with a resource name (defaults), and with LockOptions.
        if (forms.stream().noneMatch(m -> m.getParameterTypes()[0] == String.class)) {
          problems.add(twin + " has no form taking a resource name");
        }
        List<Method> withOptions = forms.stream()
            .filter(m -> m.getParameterTypes()[0] == LockOptions.class).collect(Collectors.toList());
        if (withOptions.size() != 1) {
          problems.add(twin + " needs exactly one form taking LockOptions, has " + withOptions.size());
          continue;
        }
        List<String> javaParams = Arrays.stream(withOptions.get(0).getParameters()).skip(1)
            .map(java.lang.reflect.Parameter::getName).collect(Collectors.toList());
        for (String p : kotlinParams) {
          if (STRUCTURAL.contains(p)) {
            continue;
          }
          // A per-call option of Kotlin is a LockOptions setting in Java; anything else (permits)
          // is a parameter of the same name.
          if (!options.contains(p) && !javaParams.contains(p)) {
            problems.add(op.getKey() + "(" + p + ") has no twin in " + twin + "(LockOptions, " + javaParams
                + ") or LockOptions.Builder");
          }
        }
        for (String p : javaParams) {
          if (!p.equals("action") && !p.equals("section") && !kotlinParams.contains(p)) {
            problems.add(twin + "(" + p + ") is not a parameter of " + op.getKey() + kotlinParams);
          }
        }
      }
    }
    for (String option : options) {
      boolean used = JAVA_ONLY_OPTIONS.contains(option)
          || kotlin.values().stream().anyMatch(m -> kotlinParameters(m).contains(option));
      if (!used) {
        problems.add("LockOptions." + option + " matches no parameter of any engine operation");
      }
    }
    assertEquals(List.of(), problems);

    Map<String, String> missing = new TreeMap<>();
    for (Map.Entry<String, List<String>> twin : MEMBER_TWINS.entrySet()) {
      for (String facade : twin.getValue()) {
        String[] parts = facade.split("\\.");
        Class<?> type = parts[0].equals("AsyncRedlock") ? AsyncRedlock.class : LockLease.class;
        boolean found = Arrays.stream(type.getMethods())
            .anyMatch(m -> m.getName().equals(parts[1]) && Modifier.isPublic(m.getModifiers()));
        if (!found) {
          missing.put(twin.getKey(), facade);
        }
      }
    }
    assertEquals(Map.of(), missing);
    assertEquals(new TreeSet<>(MEMBER_TWINS.keySet()), engineMembers());
  }

  /**
   * The public lock operations of the engine, by name: the members of DistributedLocks (which
   * Redlock implements) that take locks, and the extension functions on Redlock ({@code withRedlock}).
   */
  private static Map<String, Method> engineOperations() {
    Map<String, Method> ops = new TreeMap<>();
    for (Method m : DistributedLocks.class.getDeclaredMethods()) {
      if (!m.isSynthetic() && !m.isDefault() && !HANDLE_MEMBERS.contains(m.getName())) {
        assertTrue(ops.put(kotlinName(m.getName()), m) == null, "overloaded engine operation " + m.getName());
      }
    }
    for (Method m : engineClass("dev.redlock.coroutines.Redlocks").getDeclaredMethods()) {
      if (Modifier.isPublic(m.getModifiers()) && !m.isSynthetic() && !m.getName().endsWith("$default")
          && m.getParameterCount() > 0 && m.getParameterTypes()[0] == Redlock.class
          && !m.isAnnotationPresent(dev.redlock.coroutines.InternalRedlockApi.class)) {
        assertTrue(ops.put(kotlinName(m.getName()), m) == null, "overloaded engine operation " + m.getName());
      }
    }
    return ops;
  }

  /** The members of DistributedLocks that are not lock operations (their twins are in MEMBER_TWINS). */
  private static final Set<String> HANDLE_MEMBERS = Set.of("checkMasters", "close");

  /** An operation's parameters as Kotlin names them (the receiver and the continuation left out). */
  private static List<String> kotlinParameters(Method m) {
    List<String> names = new ArrayList<>();
    for (java.lang.reflect.Parameter p : m.getParameters()) {
      assertTrue(p.isNamePresent(), "compile the engine with -java-parameters: " + m);
      String name = p.getName();
      if (!name.startsWith("$")) {
        names.add(name);
      }
    }
    return names;
  }

  /** The settings LockOptions.Builder offers. */
  private static Set<String> lockOptionSetters() {
    return Arrays.stream(LockOptions.Builder.class.getDeclaredMethods())
        .filter(m -> Modifier.isPublic(m.getModifiers()) && m.getReturnType() == LockOptions.Builder.class
            && !m.getName().equals("resources"))
        .map(Method::getName)
        .collect(Collectors.toCollection(TreeSet::new));
  }

  private static Set<String> engineMembers() {
    Set<String> engine = new TreeSet<>();
    Set<String> operations = engineOperations().keySet();
    for (Method m : Redlock.class.getDeclaredMethods()) {
      if (Modifier.isPublic(m.getModifiers()) && !Modifier.isStatic(m.getModifiers()) && !m.isSynthetic()
          && !m.getName().contains("$") && !m.getName().equals("toString")
          && !operations.contains(kotlinName(m.getName()))) {
        engine.add("Redlock." + kotlinName(m.getName()));
      }
    }
    // AsyncRedlock's neutral entry: any backend's DistributedLocks.
    engine.add("DistributedLocks");
    if (Arrays.stream(Redlock.class.getConstructors()).anyMatch(c -> c.getParameterTypes()[0].getName().equals("dev.redlock.core.RedlockConfig"))) {
      engine.add("Redlock.<init>");
    }
    for (Method m : Lease.class.getDeclaredMethods()) {
      if (!m.isSynthetic()) {
        engine.add("Lease." + kotlinName(m.getName()));
      }
    }
    return engine;
  }

  @Test
  void lockOperations_takeAResourceOrLockOptions() throws Exception {
    for (String name : List.of("withLock", "withLockBlocking")) {
      Set<Class<?>> firsts = new HashSet<>();
      for (Method m : AsyncRedlock.class.getMethods()) {
        if (m.getName().equals(name)) {
          firsts.add(m.getParameterTypes()[0]);
        }
      }
      assertEquals(Set.of(String.class, LockOptions.class), firsts, name);
    }
    for (String name : List.of("acquire", "tryAcquire", "acquireReadLock", "tryAcquireReadLock", "acquireWriteLock", "tryAcquireWriteLock")) {
      assertTrue(AsyncRedlock.class.getMethod(name, String.class) != null);
      assertTrue(AsyncRedlock.class.getMethod(name, LockOptions.class) != null);
    }
    for (String name : List.of("acquirePermit", "tryAcquirePermit")) {
      assertTrue(AsyncRedlock.class.getMethod(name, String.class, int.class) != null);
      assertTrue(AsyncRedlock.class.getMethod(name, LockOptions.class, int.class) != null);
    }
  }

  private static boolean visible(int modifiers) {
    return Modifier.isPublic(modifiers) || Modifier.isProtected(modifiers);
  }

  /** Strips Kotlin's name mangling ({@code acquire-5TNNnBA}) and getter prefixes stay as they are. */
  private static String kotlinName(String jvmName) {
    int dash = jvmName.indexOf('-');
    return dash < 0 ? jvmName : jvmName.substring(0, dash);
  }

  private static Class<?> engineClass(String name) {
    try {
      return Class.forName(name);
    } catch (ClassNotFoundException e) {
      throw new AssertionError(e);
    }
  }

  private static void checkExecutable(String where, Executable e, List<String> offending) {
    for (Type p : e.getGenericParameterTypes()) {
      check(where + " parameter", p, offending);
    }
    for (Type x : e.getGenericExceptionTypes()) {
      check(where + " throws", x, offending);
    }
    for (TypeVariable<?> v : e.getTypeParameters()) {
      check(where + " <" + v.getName() + ">", v, offending);
    }
  }

  private static void check(String where, Type type, List<String> offending) {
    check(where, type, offending, new HashSet<>());
  }

  private static void check(String where, Type type, List<String> offending, Set<Type> seen) {
    if (type == null || !seen.add(type)) {
      return;
    }
    if (type instanceof Class<?>) {
      Class<?> c = (Class<?>) type;
      while (c.isArray()) {
        c = c.getComponentType();
      }
      String name = c.getName();
      if (name.startsWith("kotlin.") || name.startsWith("kotlinx.")) {
        offending.add(where + ": " + name);
      }
    } else if (type instanceof ParameterizedType) {
      ParameterizedType p = (ParameterizedType) type;
      check(where, p.getRawType(), offending, seen);
      check(where, p.getOwnerType(), offending, seen);
      for (Type a : p.getActualTypeArguments()) {
        check(where, a, offending, seen);
      }
    } else if (type instanceof WildcardType) {
      WildcardType w = (WildcardType) type;
      Stream.concat(Arrays.stream(w.getUpperBounds()), Arrays.stream(w.getLowerBounds()))
          .forEach(b -> check(where, b, offending, seen));
    } else if (type instanceof TypeVariable<?>) {
      for (Type b : ((TypeVariable<?>) type).getBounds()) {
        check(where, b, offending, seen);
      }
    } else if (type instanceof GenericArrayType) {
      check(where, ((GenericArrayType) type).getGenericComponentType(), offending, seen);
    }
  }

  /** Every public type (nested ones included) compiled into the facade's public package. */
  private static List<Class<?>> publicTypes() throws IOException, URISyntaxException, ClassNotFoundException {
    Path root = Path.of(AsyncRedlock.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    Path dir = root.resolve(PACKAGE.replace('.', '/'));
    List<Class<?>> types = new ArrayList<>();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path file : files.sorted().collect(Collectors.toList())) {
        String name = file.getFileName().toString();
        if (name.endsWith(".class")) {
          Class<?> type = Class.forName(PACKAGE + "." + name.substring(0, name.length() - 6));
          if (Modifier.isPublic(type.getModifiers()) && !type.isSynthetic()) {
            types.add(type);
          }
        }
      }
    }
    assertFalse(types.isEmpty(), "no classes found in " + dir);
    return types;
  }
}
