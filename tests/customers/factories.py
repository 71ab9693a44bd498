import factory
from django.contrib.auth import get_user_model

from customers.lifecycle import Stage
from customers.models import Customer, TimelineEvent, TimelineSource


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    email = factory.Sequence(lambda n: f"player{n}@example.com")
    name = factory.Faker("name")
    lifecycle_stage = Stage.DISCOVERY


class TimelineEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimelineEvent

    customer = factory.SubFactory(CustomerFactory)
    source = TimelineSource.CRM
    kind = "note"
    occurred_at = factory.Faker("date_time_this_year", tzinfo=__import__("datetime").UTC)
    source_key = factory.Sequence(lambda n: f"test-event-{n}")


class StaffUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@modready.example")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()
